import { createContextValues, type ContextValues } from "@connectrpc/connect";
import {
  createForwardedPeerReader,
  type ForwardingRequestLike,
  type PeerCertificateContextValuesOptions,
} from "../proxy/forwarded-peer.js";
import { peerCertificateKey } from "./context-values.js";
import { withHttp1Request } from "./http1-refusal.js";

/**
 * PeerCertificateContextValues is a `contextValues` function for the
 * connect-node, connect-express and connect-fastify adapters.
 */
export type PeerCertificateContextValues = (req: ForwardingRequestLike, values?: ContextValues) => ContextValues;

/**
 * createPeerCertificateContextValues returns a configurable variant of
 * `peerCertificateContextValues` for servers behind proxies that terminate
 * TLS and forward the client certificate in a header. The rule, per request:
 *
 * - From a trusted proxy (see `TrustedProxies`), the certificate is the one
 *   the header forwards, never the proxy's own. No header, or an empty one,
 *   is no certificate; a malformed, oversized or doubled header, or headers
 *   of two formats at once, is an unreadable certificate. Either way the call
 *   is refused with `Code.Unauthenticated`.
 * - From any other peer, forwarding headers are ignored: the connection's own
 *   TLS certificate decides, as with `peerCertificateContextValues`, and
 *   `onDecision` reports the ignored headers (`ignoredForwardingHeaders`).
 *
 * Forwarded certificates then go through the same stores and policy as direct
 * ones. Parsed certificates are cached by header value, and one header value
 * always gives the same `PeerCertificate` object, so the decision core's
 * per-connection verdict cache works per client even when many clients share
 * one proxy connection. It throws a `TypeError` naming the problem for a bad
 * option.
 *
 * @example
 * http2.createServer( // h2c: Envoy terminates TLS in front
 *   connectNodeAdapter({
 *     routes,
 *     interceptors: [createClientCertInterceptor({ store })],
 *     contextValues: createPeerCertificateContextValues({
 *       trustedProxies: { cidrs: ["127.0.0.1/32"] },
 *       formats: ["xfcc"],
 *     }),
 *   }),
 * );
 */
export function createPeerCertificateContextValues(
  options: PeerCertificateContextValuesOptions,
): PeerCertificateContextValues {
  const peerOf = createForwardedPeerReader(options);
  return (req, values = createContextValues()) => withHttp1Request(req, values.set(peerCertificateKey, peerOf(req)));
}
