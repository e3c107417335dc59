import type { HandlerContext } from "@connectrpc/connect";
import { createDecisionCore, type ClientCertOptions } from "../decision/decision.js";
import { enforceCall } from "./enforce-call.js";

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
  return (context) => {
    try {
      return enforceCall(core, context, context.values, "gate");
    } catch (error) {
      // A refusal is handed over as a rejected promise, not thrown: Connect
      // then builds its error response from a microtask, outside the deep
      // stack of the HTTP/2 request event, which makes refusals cheaper.
      return Promise.reject(error);
    }
  };
}
