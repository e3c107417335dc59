// Variants of one DER certificate that certgate must refuse as uploads:
// encodings DER forbids and structures OpenSSL does not parse, each built by
// re-assembling the certificate's own elements.
import { childrenOf, readTlv, type Tlv } from "../../src/core/der.js";

/** The length octets of a DER element of `length` content bytes. */
function lengthOctets(length: number): number[] {
  if (length < 0x80) return [length];
  if (length < 0x100) return [0x81, length];
  return [0x82, length >> 8, length & 0xff];
}

function element(tag: number, content: Uint8Array, header = lengthOctets(content.length)): Uint8Array {
  return concat(Uint8Array.of(tag, ...header), content);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

/**
 * nonDerVariants returns, by name, variants of `der` that a single upload
 * (`CreateCertificate`) refuses.
 */
export function nonDerVariants(der: Uint8Array): Record<string, Uint8Array> {
  const whole = (t: Tlv) => der.subarray(t.start, t.end);
  const content = (t: Tlv) => der.subarray(t.contentStart, t.end);
  const outer = readTlv(der, 0);
  const [tbs, algorithm, signature] = childrenOf(der, outer) as [Tlv, Tlv, Tlv];
  const fields = childrenOf(der, tbs);
  const withTbs = (tbsContent: Uint8Array) =>
    element(0x30, concat(element(0x30, tbsContent), whole(algorithm), whole(signature)));
  const replacing = (index: number, replacement: Uint8Array) =>
    withTbs(concat(...fields.map((f, i) => (i === index ? replacement : whole(f)))));
  const subjectIndex = fields.findIndex((f) => f.tag === 0xa0) === 0 ? 5 : 4;
  const extensionsIndex = fields.findIndex((f) => f.tag === 0xa3);
  const signatureBits = new Uint8Array(whole(signature));
  // One unused bit, and it set: OpenSSL clears it, and the bytes it keeps are not these.
  signatureBits[signature.contentStart - signature.start] = 1;
  signatureBits[signatureBits.length - 1] = 0x01;
  const cn = (tag: number, value: number[]) =>
    element(
      0x30,
      element(
        0x31,
        element(0x30, concat(Uint8Array.of(0x06, 0x03, 0x55, 0x04, 0x03), element(tag, Uint8Array.from(value)))),
      ),
    );
  return {
    "long-form length, one octet too many": element(0x30, content(outer), [
      0x83,
      0,
      ...lengthOctets(content(outer).length).slice(1),
    ]),
    "indefinite length": concat(Uint8Array.of(0x30, 0x80), content(outer), Uint8Array.of(0, 0)),
    "trailing bytes": concat(der, Uint8Array.of(0)),
    "signature with unused bits": element(0x30, concat(whole(tbs), whole(algorithm), signatureBits)),
    "subject that is no name": replacing(subjectIndex, cn(0x02, [1])),
    "subject with broken UTF-8": replacing(subjectIndex, cn(0x0c, [0xff, 0xfe])),
    "extensions that are no extensions": replacing(
      extensionsIndex,
      element(0xa3, element(0x30, Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x00))),
    ),
    "serial number with a padding octet": replacing(
      fields[0]?.tag === 0xa0 ? 1 : 0,
      Uint8Array.of(0x02, 0x02, 0x00, 0x01),
    ),
    "element after the extensions": withTbs(concat(...fields.map(whole), Uint8Array.of(0x05, 0x00))),
  };
}
