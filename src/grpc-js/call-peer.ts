import type { ServerHttp2Stream } from "node:http2";
import type { Metadata } from "@grpc/grpc-js";
import { peerCertificateOf, type PeerCertificate } from "../core/peer-certificate.js";
import { warnOnce } from "../core/warn-once.js";
import { createForwardedPeerReader, type PeerCertificateContextValuesOptions } from "../proxy/forwarded-peer.js";
import { configuredHeaders } from "../proxy/forwarding-headers.js";

/**
 * CallPeerOf returns the `PeerCertificate` of one grpc-js call from its
 * HTTP/2 stream and request metadata.
 */
export type CallPeerOf = (stream: ServerHttp2Stream | undefined, metadata: Metadata | undefined) => PeerCertificate;

const unreachable: PeerCertificate = Object.freeze({
  certificate: undefined,
  authorized: false,
  authorizationError: undefined,
  encrypted: false,
  error: new Error("certgate: the call's HTTP/2 stream could not be reached"),
});

/**
 * createCallPeerOf returns how the interceptor finds a call's peer: the
 * client certificate of the call's TLS connection, read once per HTTP/2
 * session (the cache connect-node's adapters share), or, with `forwarded`,
 * the certificate a trusted proxy forwarded in a header, by the same rule as
 * `createPeerCertificateContextValues`. A call whose stream cannot be reached
 * has a peer with `error`, which is refused.
 */
export function createCallPeerOf(forwarded: PeerCertificateContextValuesOptions | undefined): CallPeerOf {
  if (forwarded === undefined) {
    return (stream) => {
      if (stream === undefined) return unreachableWarned();
      return peerCertificateOf({ socket: undefined, stream });
    };
  }
  const peerOf = createForwardedPeerReader(forwarded);
  const names = configuredHeaders(forwarded.formats, forwarded.nginxHeader, forwarded.derBase64Header).map(
    (h) => h.name,
  );
  return (stream, metadata) => {
    if (stream === undefined || metadata === undefined) return unreachableWarned();
    // grpc-js keeps request headers as metadata, one entry per header line,
    // so a header sent twice has two values: it is given as an array, which
    // the rule refuses. (Node joins some repeated HTTP/2 headers with ", "
    // before grpc-js sees them; the forwarding formats refuse such values.)
    const headers: Record<string, string | string[]> = {};
    for (const name of names) {
      const values = metadata.get(name);
      if (values.length === 1) headers[name] = String(values[0]);
      else if (values.length > 1) headers[name] = values.map(String);
    }
    return peerOf({ stream, socket: stream.session?.socket, headers });
  };
}

function unreachableWarned(): PeerCertificate {
  warnOnce(
    "grpc_js_stream",
    "certgate: a grpc-js call did not lead to its HTTP/2 stream, so its client certificate cannot be read; such calls are refused",
  );
  return unreachable;
}
