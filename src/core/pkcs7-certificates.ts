import { childrenOf, decodeOid, readTlv, type Tlv } from "./der.js";

/**
 * Pkcs7Certificates is what `readPkcs7Certificates` finds: the DER of every
 * certificate of a PKCS#7 certificates-only bundle (`.p7b`, `.p7c`), or why
 * there is none.
 */
export type Pkcs7Certificates =
  | { readonly kind: "certificates"; readonly ders: readonly Uint8Array[] }
  | { readonly kind: "not_pkcs7" }
  | { readonly kind: "problem"; readonly reason: string };

// 1.2.840.113549.1.7.2, PKCS#7 signedData: the content type of a .p7b.
const signedData = "1.2.840.113549.1.7.2";
const SEQUENCE = 0x30;
const CONTEXT_0 = 0xa0;

/**
 * readPkcs7Certificates reads the certificates of a DER PKCS#7 SignedData
 * (RFC 2315 / RFC 5652 ContentInfo), as Windows and Java export a chain:
 * `not_pkcs7` for bytes that are not one, a problem for one that is broken
 * or holds no certificate. The signatures of a SignedData are not checked:
 * a certificates-only bundle has none, and what is read is only the
 * certificates, each of which the caller checks on its own. Attribute and
 * other certificate formats in the bundle are left out.
 */
export function readPkcs7Certificates(bytes: Uint8Array): Pkcs7Certificates {
  let outer: Tlv;
  let parts: Tlv[];
  try {
    outer = readTlv(bytes, 0);
    if (outer.tag !== SEQUENCE || outer.end !== bytes.length) return { kind: "not_pkcs7" };
    parts = childrenOf(bytes, outer, 3);
  } catch {
    return { kind: "not_pkcs7" };
  }
  const [type, content] = parts;
  if (type?.tag !== 0x06 || decodeOid(bytes, type) !== signedData) return { kind: "not_pkcs7" };
  try {
    if (content?.tag !== CONTEXT_0) return { kind: "problem", reason: "PKCS#7 signedData without content" };
    const data = readTlv(bytes, content.contentStart, content.end);
    if (data.tag !== SEQUENCE) return { kind: "problem", reason: "PKCS#7 signedData is not a SEQUENCE" };
    // version, digestAlgorithms, encapContentInfo, [0] certificates, ...
    const fields = childrenOf(bytes, data, 6);
    const certificates = fields.slice(3).find((f) => f.tag === CONTEXT_0);
    if (certificates === undefined) return { kind: "problem", reason: "the PKCS#7 bundle holds no certificate" };
    const ders = childrenOf(bytes, certificates)
      .filter((c) => c.tag === SEQUENCE)
      .map((c) => bytes.subarray(c.start, c.end));
    if (ders.length === 0) return { kind: "problem", reason: "the PKCS#7 bundle holds no certificate" };
    return { kind: "certificates", ders };
  } catch (error) {
    return { kind: "problem", reason: `broken PKCS#7 bundle (${(error as Error).message})` };
  }
}
