import type { HandlerContext } from "@connectrpc/connect";
import {
  createDecide,
  decisionError,
  reportDecision,
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
 * answered with `Code.Unauthenticated` without reading, decompressing or
 * parsing its body, which makes a flood of unauthenticated calls cheap to
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
  const decide = createDecide(options);
  const { onDecision } = options;
  function enforce(context: HandlerContext, decision: Decision): void {
    if (onDecision !== undefined) {
      reportDecision(onDecision, decision, `/${context.service.typeName}/${context.method.name}`, "gate");
    }
    if (decision.kind !== "admitted") {
      throw decisionError(decision);
    }
    context.values.set(clientCertificateKey, decision.certificate);
  }
  return (context) => {
    const result = decide(context.values.get(peerCertificateKey));
    if (result instanceof Promise) {
      return result.then((decision) => enforce(context, decision));
    }
    enforce(context, result);
  };
}
