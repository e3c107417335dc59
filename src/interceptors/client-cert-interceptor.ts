import type { Interceptor } from "@connectrpc/connect";
import {
  createDecide,
  decisionError,
  reportDecision,
  type ClientCertOptions,
  type Decision,
} from "../decision.js";
import { clientCertificateKey, peerCertificateKey } from "../peer.js";

/**
 * createClientCertInterceptor returns a Connect server `Interceptor` that
 * admits a call only when the client certificate of its TLS connection is
 * admitted by `options.store` and within its validity window. Every refusal is
 * a `ConnectError` with `Code.Unauthenticated` (HTTP 401 on the Connect
 * protocol, grpc-status 16 on gRPC), raised before the handler runs, for unary
 * and streaming calls alike. An admitted call finds the certificate under
 * `clientCertificateKey`.
 *
 * The adapter must be given `peerCertificateContextValues` as its
 * `contextValues`. To refuse before the request body is read, use
 * `createClientCertGate` instead (or as well).
 *
 * @example
 * const store = createThumbprintStore("3AF2...9C");
 * http2.createSecureServer(
 *   { cert, key, requestCert: true, rejectUnauthorized: false },
 *   connectNodeAdapter({
 *     routes,
 *     interceptors: [createClientCertInterceptor({ store })],
 *     contextValues: peerCertificateContextValues,
 *   }),
 * );
 */
export function createClientCertInterceptor(options: ClientCertOptions): Interceptor {
  const decide = createDecide(options);
  const { onDecision } = options;
  return (next) => async (req) => {
    const result = decide(req.contextValues.get(peerCertificateKey));
    const decision: Decision = result instanceof Promise ? await result : result;
    if (onDecision !== undefined) {
      reportDecision(onDecision, decision, `/${req.service.typeName}/${req.method.name}`, "interceptor");
    }
    if (decision.kind !== "admitted") {
      throw decisionError(decision);
    }
    req.contextValues.set(clientCertificateKey, decision.certificate);
    return await next(req);
  };
}
