import type { Interceptor } from "@connectrpc/connect";
import {
  createDecisionCore,
  decisionError,
  type ClientCertOptions,
  type Decision,
} from "../decision.js";
import { clientCertificateKey, peerCertificateKey } from "../peer.js";

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
  const { decide, needsProcedure } = core;
  const reports = options.onDecision !== undefined;
  return (next) => async (req) => {
    // The procedure string is built only when rules or onDecision need it.
    const procedure = needsProcedure || reports ? `/${req.service.typeName}/${req.method.name}` : undefined;
    if (procedure !== undefined && core.isOpen(procedure)) {
      core.report(undefined, procedure, "interceptor");
      return await next(req);
    }
    const result = decide(req.contextValues.get(peerCertificateKey), procedure);
    const decision: Decision = result instanceof Promise ? await result : result;
    if (reports) {
      core.report(decision, procedure as string, "interceptor");
    }
    if (decision.kind === "admitted") {
      req.contextValues.set(clientCertificateKey, decision.certificate);
    } else if (decision.reportOnly !== true) {
      throw decisionError(decision, procedure ?? `/${req.service.typeName}/${req.method.name}`);
    }
    return await next(req);
  };
}
