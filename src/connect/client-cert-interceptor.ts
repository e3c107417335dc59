import type { Interceptor } from "@connectrpc/connect";
import { createDecisionCore, type ClientCertOptions } from "../decision/decision.js";
import { enforceCall } from "./enforce-call.js";

/**
 * createClientCertInterceptor returns a Connect server `Interceptor` that
 * admits a call only when the client certificate of its TLS connection is
 * admitted by `options.store` and within its validity window, and passes the
 * validation policy of the options (trust, revocation, identities, rules).
 * Every refusal is a `ConnectError` with `Code.Unauthenticated` (HTTP 401 on
 * the Connect protocol, grpc-status 16 on gRPC), or `Code.PermissionDenied`
 * when identities refuse an otherwise valid certificate, raised before the
 * handler runs, for unary and streaming calls alike. An admitted call finds
 * the certificate under `clientCertificateKey` (typed: `clientIdentity(ctx)`).
 * With `reportOnly`, refused calls are reported and go through.
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
  const core = createDecisionCore(options);
  return (next) => async (req) => {
    // A warm connection decides synchronously: no promise to await.
    const pending = enforceCall(core, req, req.contextValues, "interceptor");
    if (pending !== undefined) {
      await pending;
    }
    return await next(req);
  };
}
