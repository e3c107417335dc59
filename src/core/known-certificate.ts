// Certificates already read, by DER, for returning clients.
import { certificateOfPeerDer, type Certificate } from "./certificate.js";
import { readValidity } from "./certificate-validity.js";
import { createLruCache } from "./lru-cache.js";

// Clients reconnect with the same certificate: a returning client's new
// connection gets the Certificate already read for its DER, so it costs no
// parse and no hash, and the decision, which is kept per certificate, is
// already made (until the store or the policy changes). Each connection
// still has its own PeerCertificate. Bounded in entries and in bytes (a
// certificate over 8 KiB, far above any real client's, is not kept), so a
// flood of distinct certificates holds at most about 10 MB and costs what
// a first-seen certificate always costs.
const knownCertificates = createLruCache<string, Certificate>(1024);
const maxKnownDerLength = 8192;

/**
 * knownCertificate returns the Certificate of this DER (a byte string),
 * read once and kept while it is among the 1024 last read; undefined when
 * its validity dates are in a form Node's reading must decide.
 */
export function knownCertificate(der: string): Certificate | undefined {
  // peek, not get: a hit costs one map look-up, and a client pushed out by
  // 1024 newer certificates is read once more.
  let certificate = der.length <= maxKnownDerLength ? knownCertificates.peek(der) : undefined;
  if (certificate === undefined) {
    // A Uint8Array of its own: a small Buffer.from() shares Node's pool,
    // which `certificate.der.buffer` would hand to any handler.
    const bytes = new Uint8Array(Buffer.from(der, "latin1"));
    let validity: { notBefore: Date; notAfter: Date };
    try {
      validity = readValidity(bytes);
    } catch {
      // A date in a form RFC 5280 does not allow: Node's reading decides.
      return undefined;
    }
    certificate = certificateOfPeerDer(bytes, validity);
    if (der.length <= maxKnownDerLength) knownCertificates.set(der, certificate);
  }
  return certificate;
}
