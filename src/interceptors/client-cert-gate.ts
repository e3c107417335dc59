import type { HandlerContext } from "@connectrpc/connect";
import {
  createDecisionCore,
  decisionError,
  type ClientCertOptions,
  type Decision,
} from "../decision.js";
import { clientCertificateKey, peerCertificateKey } from "../peer.js";

/**
 * ClientCertGate is a Connect `requestGate`: it runs once the request headers
 * are in, before any of the body is read.
 */
export type ClientCertGate = (context: HandlerContext) => void | Promise<void>;

/**
 * createClientCertGate returns the decision of `createClientCertInterceptor`
 * as a Connect `requestGate` (Connect 2.2 and later): a refused call is
 * answered with `Code.Unauthenticated` (or `Code.PermissionDenied`, see the
 * interceptor) without reading, decompressing or parsing its body, which makes a flood of unauthenticated calls cheap to
 * turn away. On a warm connection it decides synchronously.
 *
 * @example
 * connectNodeAdapter({
 *   routes,
 *   requestGate: createClientCertGate({ store }),
 *   contextValues: peerCertificateContextValues,
 * });
 */
export function createClientCertGate(options: ClientCertOptions): ClientCertGate {
  const core = createDecisionCore(options);
  const { decide, needsProcedure } = core;
  const reports = options.onDecision !== undefined;
  function enforce(context: HandlerContext, decision: Decision, procedure: string | undefined): void {
    if (reports) {
      core.report(decision, procedure as string, "gate");
    }
    if (decision.kind === "admitted") {
      context.values.set(clientCertificateKey, decision.certificate);
    } else if (decision.reportOnly !== true) {
      throw decisionError(decision, procedure ?? `/${context.service.typeName}/${context.method.name}`);
    }
  }
  return (context) => {
    // The procedure string is built only when rules or onDecision need it.
    const procedure = needsProcedure || reports ? `/${context.service.typeName}/${context.method.name}` : undefined;
    if (procedure !== undefined && core.isOpen(procedure)) {
      core.report(undefined, procedure, "gate");
      return;
    }
    const result = decide(context.values.get(peerCertificateKey), procedure);
    if (result instanceof Promise) {
      return result.then((decision) => enforce(context, decision, procedure));
    }
    enforce(context, result, procedure);
  };
}
