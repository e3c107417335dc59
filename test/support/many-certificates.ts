// Many real, distinct X.509 certificates, fast: one template certificate
// issued by a development CA, then per certificate a new serial number and a
// new ECDSA signature by the CA (Node's native signing, about 30 µs each).
// Every result is a well-formed certificate that Node parses and whose
// signature the CA's key verifies; they share the template's subject and key.
import { createPrivateKey, sign } from "node:crypto";
import { createDevCa, issueDevCertificate, type IssuedCertificate } from "../../src/dev-certificates.js";

/** The generated certificates and the CA that signed them. */
export interface ManyCertificates {
  readonly ca: IssuedCertificate;
  /** DER of each certificate, serial numbers 1..count (in the last bytes). */
  readonly ders: Uint8Array[];
}

const serialLength = 16;

/**
 * CertificateFactory issues certificates of one template, one at a time.
 */
export interface CertificateFactory {
  readonly ca: IssuedCertificate;
  /** The certificate with serial number `i` (1 to 2^32 - 1, in the last bytes). */
  issue(i: number): Uint8Array;
}

/**
 * createCertificateFactory makes the CA and the template; `issue` then signs
 * one certificate per call, so that a million need not be held at once.
 */
export async function createCertificateFactory(commonName = "many"): Promise<CertificateFactory> {
  const ca = await createDevCa({ commonName: `${commonName} CA` });
  const serial = `7f${"11".repeat(serialLength - 1)}`;
  const template = await issueDevCertificate(ca, { commonName, serialNumber: serial, usages: ["client"] });
  const key = createPrivateKey(ca.key);
  const outer = readElement(template.der, 0);
  const tbs = readElement(template.der, outer.contentStart);
  const algorithm = readElement(template.der, tbs.end);
  const tbsBytes = template.der.subarray(tbs.start, tbs.end);
  const algorithmBytes = template.der.subarray(algorithm.start, algorithm.end);
  const serialBytes = Buffer.from(serial, "hex");
  const serialAt = Buffer.from(tbsBytes).indexOf(serialBytes);
  if (serialAt < 0) throw new Error("the template's serial number was not found");
  return {
    ca,
    issue(i) {
      const next = Buffer.from(tbsBytes);
      next.writeUInt32BE(i, serialAt + serialLength - 4);
      const signature = sign("sha256", next, { key, dsaEncoding: "der" });
      const bitString = Buffer.concat([
        Buffer.from([0x03]),
        encodeLength(signature.length + 1),
        Buffer.from([0]),
        signature,
      ]);
      const content = Buffer.concat([next, algorithmBytes, bitString]);
      return new Uint8Array(Buffer.concat([Buffer.from([0x30]), encodeLength(content.length), content]));
    },
  };
}

/**
 * generateCertificates issues `count` certificates of one template.
 */
export async function generateCertificates(count: number, commonName = "many"): Promise<ManyCertificates> {
  const factory = await createCertificateFactory(commonName);
  const ders: Uint8Array[] = [];
  for (let i = 1; i <= count; i++) ders.push(factory.issue(i));
  return { ca: factory.ca, ders };
}

function readElement(der: Uint8Array, start: number): { start: number; contentStart: number; end: number } {
  const first = der[start + 1]!;
  let length = first;
  let header = 2;
  if (first & 0x80) {
    const n = first & 0x7f;
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + der[start + 2 + i]!;
    header = 2 + n;
  }
  return { start, contentStart: start + header, end: start + header + length };
}

function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  if (length < 0x100) return Buffer.from([0x81, length]);
  return Buffer.from([0x82, length >> 8, length & 0xff]);
}
