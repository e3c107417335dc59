/**
 * Tlv is one DER element: where its tag, header and contents sit in a buffer.
 */
export interface Tlv {
  /** The identifier octet (low-tag-number form only). */
  readonly tag: number;
  /** Offset of the identifier octet. */
  readonly start: number;
  /** Offset of the first contents octet. */
  readonly contentStart: number;
  /** Offset just after the contents. */
  readonly end: number;
}

// certgate's one DER reader: certificates, CRLs, names and the structural
// check of certificate files all read DER through these functions.

/**
 * readTlv reads the DER element at `offset`. It throws a `RangeError` on
 * anything malformed (high tag numbers, indefinite or overlong lengths, a
 * length past `limit`), so callers fail closed.
 */
export function readTlv(bytes: Uint8Array, offset: number, limit = bytes.length): Tlv {
  if (offset + 2 > limit) {
    throw new RangeError("der: truncated element");
  }
  const tag = bytes[offset] ?? 0;
  if ((tag & 0x1f) === 0x1f) {
    throw new RangeError("der: high tag numbers are not supported");
  }
  let length = bytes[offset + 1] ?? 0;
  let contentStart = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4) {
      throw new RangeError("der: unsupported length");
    }
    length = 0;
    for (let i = 0; i < count; i++) {
      length = length * 256 + (bytes[contentStart + i] ?? 0);
    }
    contentStart += count;
  }
  const end = contentStart + length;
  if (end > limit) {
    throw new RangeError("der: element runs past its container");
  }
  return { tag, start: offset, contentStart, end };
}

/**
 * childrenOf lists the elements inside a constructed element: all of them,
 * or the first `max` (so that hostile input with millions of tiny elements
 * costs nothing when only the first few matter).
 */
export function childrenOf(bytes: Uint8Array, parent: Tlv, max = Infinity): Tlv[] {
  const children: Tlv[] = [];
  let offset = parent.contentStart;
  while (offset < parent.end && children.length < max) {
    const child = readTlv(bytes, offset, parent.end);
    children.push(child);
    offset = child.end;
  }
  return children;
}

/**
 * decodeOid decodes the contents of an OBJECT IDENTIFIER element to dotted
 * form, such as `2.5.4.3`.
 */
export function decodeOid(bytes: Uint8Array, tlv: Tlv): string {
  const arcs: number[] = [];
  let value = 0;
  for (let i = tlv.contentStart; i < tlv.end; i++) {
    const b = bytes[i] ?? 0;
    value = value * 128 + (b & 0x7f);
    if ((b & 0x80) === 0) {
      if (arcs.length === 0) {
        const first = value < 80 ? Math.floor(value / 40) : 2;
        arcs.push(first, value - first * 40);
      } else {
        arcs.push(value);
      }
      value = 0;
    }
  }
  return arcs.join(".");
}

/**
 * decodeTime decodes a UTCTime or GeneralizedTime element in the form RFC
 * 5280 requires (seconds, `Z`); anything else throws a `RangeError`.
 */
export function decodeTime(bytes: Uint8Array, tlv: Tlv): Date {
  // Read digit by digit: it runs on every new connection (the validity of
  // the client certificate), where a string, a regular expression and their
  // garbage cost ten times more.
  const at = tlv.contentStart;
  const utc = tlv.tag === 0x17;
  const length = tlv.end - at;
  if (!((utc && length === 13) || (tlv.tag === 0x18 && length === 15)) || bytes[tlv.end - 1] !== 0x5a) {
    throw badTime(bytes, tlv);
  }
  const y = utc ? 2 : 4;
  let year = digitsAt(bytes, at, y);
  if (utc) year += year < 50 ? 2000 : 1900; // RFC 5280 UTCTime window
  const date = Date.UTC(
    year,
    digitsAt(bytes, at + y, 2) - 1,
    digitsAt(bytes, at + y + 2, 2),
    digitsAt(bytes, at + y + 4, 2),
    digitsAt(bytes, at + y + 6, 2),
    digitsAt(bytes, at + y + 8, 2),
  );
  if (Number.isNaN(date)) throw badTime(bytes, tlv);
  return new Date(date);
}

// The decimal number in `count` ASCII digits at `offset`, or NaN.
function digitsAt(bytes: Uint8Array, offset: number, count: number): number {
  let value = 0;
  for (let i = offset; i < offset + count; i++) {
    const d = (bytes[i] ?? 0) - 0x30;
    if (d < 0 || d > 9) return Number.NaN;
    value = value * 10 + d;
  }
  return value;
}

function badTime(bytes: Uint8Array, tlv: Tlv): RangeError {
  return new RangeError(`der: bad time ${JSON.stringify(latin1.decode(bytes.subarray(tlv.contentStart, tlv.end)))}`);
}

const latin1 = new TextDecoder("latin1");
const utf8 = new TextDecoder("utf-8", { fatal: true });
const utf16be = new TextDecoder("utf-16be", { fatal: true });

/**
 * decodeDirectoryString decodes an attribute value of a name: the string
 * types as text; anything else (or text that does not decode) as `#` and the
 * hex of the whole element, the RFC 4514 form, so it can only match itself.
 */
export function decodeDirectoryString(bytes: Uint8Array, tlv: Tlv): string {
  const content = bytes.subarray(tlv.contentStart, tlv.end);
  try {
    switch (tlv.tag) {
      case 0x0c: // UTF8String
        return utf8.decode(content);
      case 0x12: // NumericString
      case 0x13: // PrintableString
      case 0x16: // IA5String
      case 0x1a: // VisibleString
      case 0x14: // TeletexString: in practice Latin-1
        return latin1.decode(content);
      case 0x1e: // BMPString
        return utf16be.decode(content);
      case 0x1c: {
        // UniversalString: UTF-32BE
        let text = "";
        for (let i = 0; i + 3 < content.length; i += 4) {
          text += String.fromCodePoint(
            ((content[i] ?? 0) << 24) |
              ((content[i + 1] ?? 0) << 16) |
              ((content[i + 2] ?? 0) << 8) |
              (content[i + 3] ?? 0),
          );
        }
        return text;
      }
    }
  } catch {
    // Fall through to the hex form.
  }
  return `#${Buffer.from(bytes.subarray(tlv.start, tlv.end)).toString("hex")}`;
}

/**
 * DerKind is what `inspectDer` makes of some bytes.
 */
export type DerKind =
  | { readonly kind: "certificate" }
  | { readonly kind: "private_key" }
  | { readonly kind: "pkcs12" }
  | { readonly kind: "invalid"; readonly reason: string };

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
 * archive, so that a report can say so. A structural check: it tells a
 * certificate from a truncated file, a key or an archive in about a
 * microsecond, without the ~250 µs of a full parse.
 */
export function inspectDer(bytes: Uint8Array): DerKind {
  let outer: Tlv;
  try {
    outer = readTlv(bytes, 0);
  } catch {
    return { kind: "invalid", reason: "not DER: no outer SEQUENCE, or it is truncated" };
  }
  if (outer.tag !== SEQUENCE) {
    return { kind: "invalid", reason: "not DER: no outer SEQUENCE, or it is truncated" };
  }
  if (outer.end !== bytes.length) {
    return { kind: "invalid", reason: `not DER: ${bytes.length - outer.end} bytes after the certificate` };
  }
  let parts: Tlv[];
  try {
    parts = childrenOf(bytes, outer, 10);
  } catch {
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
  let tbs: Tlv[];
  try {
    tbs = childrenOf(bytes, first, 16);
  } catch {
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
  const versionValue =
    version !== undefined && version.end - version.contentStart === 1 ? bytes[version.contentStart] : undefined;
  if (versionValue === 3 && second?.tag === SEQUENCE) {
    try {
      const oid = readTlv(bytes, second.contentStart, second.end);
      if (oid.tag === OID && pkcs7Prefix.every((b, i) => bytes[oid.contentStart + i] === b)) {
        return { kind: "pkcs12" };
      }
    } catch {
      // Not a PFX.
    }
  }
  // PKCS#8 (version 0/1, AlgorithmIdentifier, OCTET STRING key), PKCS#1 RSA
  // (version 0 and eight INTEGERs), OpenSSL's DSA (version 0 and five) and
  // SEC1 EC keys (version 1, OCTET STRING key) open with a small INTEGER
  // version; a version alone (`MAMCAQA=`) is junk, not a key.
  const third = parts[2];
  const pkcs8 = (versionValue === 0 || versionValue === 1) && second?.tag === SEQUENCE && third?.tag === OCTET_STRING;
  const integers = versionValue === 0 && parts.length >= 6 && parts.every((p) => p.tag === INTEGER);
  const sec1 = versionValue === 1 && second?.tag === OCTET_STRING;
  if (pkcs8 || integers || sec1) {
    return { kind: "private_key" };
  }
  return { kind: "invalid", reason: "not a certificate" };
}
