// A structural DER check: enough to tell a certificate from a truncated file,
// a private key or a PKCS#12 archive in about a microsecond, without the
// ~250 µs of a full parse. A file that passes is indexed by its hash; a
// client can only ever present a certificate that TLS itself parsed, so a
// structurally sound but otherwise odd file in the index admits nobody.

/**
 * DerKind is what `inspectDer` makes of some bytes.
 */
export type DerKind =
  | { readonly kind: "certificate" }
  | { readonly kind: "private_key" }
  | { readonly kind: "pkcs12" }
  | { readonly kind: "invalid"; readonly reason: string };

interface Tlv {
  readonly tag: number;
  /** Offset of the first content byte. */
  readonly start: number;
  /** Offset just past the content. */
  readonly end: number;
}

// Reads one tag-length-value at `offset`, refusing what DER forbids
// (indefinite lengths, lengths over 4 bytes) and anything that runs past
// `limit`.
function readTlv(bytes: Uint8Array, offset: number, limit: number): Tlv | undefined {
  if (offset + 2 > limit) {
    return undefined;
  }
  const tag = bytes[offset]!;
  if ((tag & 0x1f) === 0x1f) {
    return undefined; // multi-byte tags never occur in certificates
  }
  let length = bytes[offset + 1]!;
  let start = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4 || start + count > limit) {
      return undefined;
    }
    length = 0;
    for (let i = 0; i < count; i++) {
      length = length * 256 + bytes[start + i]!;
    }
    start += count;
  }
  const end = start + length;
  return end > limit ? undefined : { tag, start, end };
}

function children(bytes: Uint8Array, parent: Tlv, max: number): Tlv[] | undefined {
  const list: Tlv[] = [];
  let offset = parent.start;
  while (offset < parent.end) {
    if (list.length === max) {
      return list;
    }
    const child = readTlv(bytes, offset, parent.end);
    if (child === undefined) {
      return undefined;
    }
    list.push(child);
    offset = child.end;
  }
  return list;
}

const SEQUENCE = 0x30;
const INTEGER = 0x02;
const BIT_STRING = 0x03;
const OCTET_STRING = 0x04;
const OID = 0x06;
const VERSION = 0xa0;

// 1.2.840.113549.1.7 (PKCS#7 content types), the start of every PFX's authSafe.
const pkcs7Prefix = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07];

/**
 * inspectDer tells whether `bytes` are exactly one DER certificate
 * (Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm,
 * signatureValue } with the fields of tbsCertificate in order and nothing
 * after it), and otherwise whether they look like a private key or a PKCS#12
 * archive, so that the report can say so.
 */
export function inspectDer(bytes: Uint8Array): DerKind {
  const outer = readTlv(bytes, 0, bytes.length);
  if (outer === undefined || outer.tag !== SEQUENCE) {
    return { kind: "invalid", reason: "not DER: no outer SEQUENCE, or it is truncated" };
  }
  if (outer.end !== bytes.length) {
    return { kind: "invalid", reason: `not DER: ${bytes.length - outer.end} bytes after the certificate` };
  }
  const parts = children(bytes, outer, 8);
  if (parts === undefined) {
    return { kind: "invalid", reason: "not DER: broken or truncated encoding" };
  }
  const [first, second, third] = parts;
  if (first?.tag === INTEGER) {
    return otherKind(bytes, parts);
  }
  if (first?.tag === SEQUENCE && second?.tag === OCTET_STRING && parts.length === 2) {
    return { kind: "private_key" }; // EncryptedPrivateKeyInfo
  }
  if (parts.length !== 3 || first?.tag !== SEQUENCE || second?.tag !== SEQUENCE || third?.tag !== BIT_STRING) {
    return { kind: "invalid", reason: "not a certificate: expected tbsCertificate, signatureAlgorithm, signature" };
  }
  const tbs = children(bytes, first, 16);
  if (tbs === undefined) {
    return { kind: "invalid", reason: "not a certificate: broken tbsCertificate" };
  }
  const fields = tbs[0]?.tag === VERSION ? tbs.slice(1) : tbs;
  const expected = [INTEGER, SEQUENCE, SEQUENCE, SEQUENCE, SEQUENCE, SEQUENCE];
  if (fields.length < expected.length || expected.some((tag, i) => fields[i]?.tag !== tag)) {
    return { kind: "invalid", reason: "not a certificate: tbsCertificate fields missing or out of order" };
  }
  return { kind: "certificate" };
}

function otherKind(bytes: Uint8Array, parts: Tlv[]): DerKind {
  const [version, second] = parts;
  const versionValue = version !== undefined && version.end - version.start === 1 ? bytes[version.start] : undefined;
  if (versionValue === 3 && second?.tag === SEQUENCE) {
    const oid = readTlv(bytes, second.start, second.end);
    if (oid?.tag === OID && pkcs7Prefix.every((b, i) => bytes[oid.start + i] === b)) {
      return { kind: "pkcs12" };
    }
  }
  // PKCS#8 (version 0/1, algorithm, key), PKCS#1 RSA (version 0, n, e, ...)
  // and SEC1 EC keys (version 1, key octets, ...) all open with a small
  // INTEGER version.
  if (versionValue === 0 || versionValue === 1) {
    return { kind: "private_key" };
  }
  return { kind: "invalid", reason: "not a certificate" };
}
