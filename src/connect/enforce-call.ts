import type { ContextValues } from "@connectrpc/connect";
import type { DecisionCore, ProcedureSource } from "../decision/decision.js";
import type { Decision, DecisionVia } from "../core/decision-report.js";
import type { Enforcement } from "../core/enforcement.js";
import { clientCertificateKey, peerCertificateKey } from "./context-values.js";
import { refusalError } from "./refusal-error.js";

/**
 * DecisionCall is what the Connect adapters read of a call: its service and
 * method, which make the procedure. A Connect `HandlerContext` and an
 * interceptor's request are both one.
 */
export type DecisionCall = ProcedureSource;

/**
 * enforceCall decides one Connect call on the core: reads the peer from
 * `values` (`peerCertificateKey`), gives an admitted certificate to the
 * handler under `clientCertificateKey`, and throws a refusal as the
 * `ConnectError` of `refusalError`. Returns a promise only when the
 * connection has no cached decision. `decided` is the call's decision when
 * it was made already (see `DecisionCore.enforce`).
 */
export function enforceCall(
  core: DecisionCore,
  call: DecisionCall,
  values: ContextValues,
  via: DecisionVia,
  decided?: Decision | Promise<Decision>,
): void | Promise<void> {
  const result = core.enforce(values.get(peerCertificateKey), call, via, decided);
  if (result instanceof Promise) {
    return result.then((enforcement) => act(enforcement, values));
  }
  act(result, values);
}

function act(enforcement: Enforcement, values: ContextValues): void {
  if (enforcement.kind === "refused") {
    throw refusalError(enforcement);
  }
  if (enforcement.kind === "admitted") {
    values.set(clientCertificateKey, enforcement.certificate);
  }
}
