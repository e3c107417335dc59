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
 * childrenOf lists the elements inside a constructed element.
 */
export function childrenOf(bytes: Uint8Array, parent: Tlv): Tlv[] {
  const children: Tlv[] = [];
  let offset = parent.contentStart;
  while (offset < parent.end) {
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
  const text = Buffer.from(bytes.subarray(tlv.contentStart, tlv.end)).toString("latin1");
  const m = (tlv.tag === 0x17 ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/ : tlv.tag === 0x18 ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/ : /^$/).exec(text);
  if (m === null) throw new RangeError(`der: bad time ${JSON.stringify(text)}`);
  let year = Number(m[1]);
  if (tlv.tag === 0x17) year += year < 50 ? 2000 : 1900; // RFC 5280 UTCTime window
  return new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
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
            ((content[i] ?? 0) << 24) | ((content[i + 1] ?? 0) << 16) | ((content[i + 2] ?? 0) << 8) | (content[i + 3] ?? 0),
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
