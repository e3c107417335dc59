// The client certificate's DER, read from the connection's TLS session
// (`TLSSocket.getSession()`): the cheapest public way to reach it on a new
// connection. `getPeerCertificate(false)` builds a whole object (names,
// public key, three hashes) and costs several times more;
// `getPeerX509Certificate()` is cheap only when the client sent no chain,
// because Node copies and re-parses every chain certificate (see
// BENCHMARKS.md).
import { readTlv } from "./der.js";

/**
 * peerDerOfTlsSession returns a copy of the peer certificate's DER held in a
 * serialized OpenSSL session (the `peer [3] EXPLICIT Certificate` field of
 * OpenSSL's and BoringSSL's `SSL_SESSION` encoding), as a byte (latin1)
 * string, or undefined when the session holds no peer certificate. It throws
 * a `RangeError` on anything malformed. A string, because it is what a
 * returning client's certificate is looked up by; `Buffer.from(der,
 * "latin1")` gives the bytes back.
 *
 * The session also holds the connection's resumption secret, so the buffer
 * is zeroed before this returns, whatever happens.
 */
export function peerDerOfTlsSession(session: Uint8Array): string | undefined {
  try {
    const outer = readTlv(session, 0);
    if (outer.tag !== 0x30) throw new RangeError("tls session: not a SEQUENCE");
    // version, ssl_version, cipher, session_id, master_key, then the tagged
    // fields in increasing order: [0] key_arg, [1] time, [2] timeout, [3] peer.
    let offset = outer.contentStart;
    for (let index = 0; offset < outer.end; index++) {
      const field = readTlv(session, offset, outer.end);
      offset = field.end;
      if (index < 5) continue;
      if (field.tag === 0xa3) {
        const certificate = readTlv(session, field.contentStart, field.end);
        if (certificate.tag !== 0x30 || certificate.end !== field.end) {
          throw new RangeError("tls session: the peer field is not one certificate");
        }
        // A copy, byte for byte (Node's latin1, not TextDecoder's, which is
        // windows-1252): the session is zeroed below.
        return Buffer.from(session.buffer, session.byteOffset, session.byteLength).toString(
          "latin1",
          certificate.start,
          certificate.end,
        );
      }
      // Past [3]: the session has no peer certificate.
      if ((field.tag & 0xe0) === 0xa0 && (field.tag & 0x1f) > 3) return undefined;
    }
    return undefined;
  } finally {
    session.fill(0);
  }
}
