import { createContextKey, createContextValues, type ContextValues } from "@connectrpc/connect";
import type { Certificate } from "../core/certificate.js";
import { peerCertificateOf, type NodeRequestLike, type PeerCertificate } from "../core/peer-certificate.js";
import { withHttp1Request } from "./http1-refusal.js";

/**
 * peerCertificateKey is the context key under which
 * `peerCertificateContextValues` stores the `PeerCertificate` of the request's
 * connection. It is undefined when the adapter was not given certgate's
 * `contextValues`.
 */
export const peerCertificateKey = createContextKey<PeerCertificate | undefined>(undefined, {
  description: "certgate peer certificate",
});

/**
 * clientCertificateKey is the context key that holds the client's
 * `Certificate` once certgate admitted the call, for handlers:
 * `ctx.values.get(clientCertificateKey)`. It is undefined before that.
 */
export const clientCertificateKey = createContextKey<Certificate | undefined>(undefined, {
  description: "certgate client certificate",
});

/**
 * peerCertificateContextValues reads the client certificate of the request's
 * TLS connection and stores it under `peerCertificateKey`, for
 * `connectNodeAdapter({ contextValues: peerCertificateContextValues })`, and
 * the same option of `expressConnectMiddleware` and `fastifyConnectPlugin`.
 * The certificate is read and parsed once per connection, not per request.
 * On HTTP/1.x it also keeps the Node request, privately, so that a call the
 * gate refuses closes its connection rather than reading the body.
 *
 * @example
 * http2.createSecureServer(
 *   { cert, key, requestCert: true, rejectUnauthorized: false },
 *   connectNodeAdapter({ routes, interceptors, contextValues: peerCertificateContextValues }),
 * );
 */
export function peerCertificateContextValues(
  req: NodeRequestLike,
  values: ContextValues = createContextValues(),
): ContextValues {
  return withHttp1Request(req, values.set(peerCertificateKey, peerCertificateOf(req)));
}
