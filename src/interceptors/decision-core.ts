import type { ContextValues } from "@connectrpc/connect";
import { createDecisionEngine, type ClientCertOptions, type Decision, type DecisionEngine } from "../decision.js";
import { clientCertificateKey, peerCertificateKey } from "../peer.js";
import { decisionError } from "./decision-error.js";

/**
 * DecisionCall is what the core reads of a call: its service and method,
 * which make the procedure. A Connect `HandlerContext` and an interceptor's
 * request are both one.
 */
export interface DecisionCall {
  readonly service: { readonly typeName: string };
  readonly method: { readonly name: string };
}

/**
 * DecisionCore is the decision shared by the Connect interceptor and the
 * gate, with what they need around it.
 */
export interface DecisionCore extends DecisionEngine {
  /**
   * Decides one call and acts on it, as both adapters do: reports the
   * decision, gives an admitted certificate to the handler under
   * `clientCertificateKey` in `values`, and throws a refusal as the
   * `ConnectError` of `decisionError` (unless the policy is report-only).
   * Returns a promise only when the connection has no cached decision.
   */
  enforce(call: DecisionCall, values: ContextValues, via: "interceptor" | "gate"): void | Promise<void>;
}

/**
 * createDecisionCore is `createDecide` with the rule look-up, the
 * `onDecision` reporting and the enforcement the Connect adapters use.
 */
export function createDecisionCore(options: ClientCertOptions): DecisionCore {
  const engine = createDecisionEngine(options);
  const { decide, needsProcedure, reports, isOpen, report } = engine;

  function act(decision: Decision, call: DecisionCall, values: ContextValues, procedure: string | undefined, via: "interceptor" | "gate"): void {
    if (reports) {
      report(decision, procedure as string, via);
    }
    if (decision.kind === "admitted") {
      values.set(clientCertificateKey, decision.certificate);
    } else if (decision.reportOnly !== true) {
      throw decisionError(decision, procedure ?? procedureOf(call));
    }
  }

  return {
    ...engine,
    enforce(call, values, via) {
      // The procedure string is built only when rules or onDecision need it.
      const procedure = needsProcedure || reports ? procedureOf(call) : undefined;
      if (procedure !== undefined && isOpen(procedure)) {
        report(undefined, procedure, via);
        return;
      }
      const result = decide(values.get(peerCertificateKey), procedure);
      if (result instanceof Promise) {
        return result.then((decision) => act(decision, call, values, procedure, via));
      }
      act(result, call, values, procedure, via);
    },
  };
}

function procedureOf(call: DecisionCall): string {
  return `/${call.service.typeName}/${call.method.name}`;
}
