// isPlainCertificateDer vouches for the certificates that issuers make (so a
// bulk load skips the full parse) and never for bytes that parseCertificate
// refuses or reads as other bytes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isPlainCertificateDer } from "../../src/core/plain-certificate-der.js";
import { parseCertificate } from "../../src/core/certificate.js";
import { createDevCa, issueDevCertificate, type IssuedCertificate } from "../../src/dev-certificates.js";
import { decodePemOrDer } from "../../src/core/pem-der.js";
import { createOpensslCa, type OpensslCa } from "../support/openssl-ca.js";
import { nonDerVariants } from "../support/non-der-certificates.js";

let ca: IssuedCertificate;
let leaf: IssuedCertificate;
let openssl: OpensslCa;

beforeAll(async () => {
  ca = await createDevCa({ commonName: "plain DER test CA" });
  leaf = await issueDevCertificate(ca, {
    commonName: "plain",
    dnsNames: ["plain.example"],
    ipAddresses: ["127.0.0.1"],
    usages: ["server", "client"],
  });
  openssl = await createOpensslCa();
});
afterAll(async () => {
  await openssl?.remove();
});

function derOf(pem: string): Uint8Array {
  const decoded = decodePemOrDer(Buffer.from(pem));
  if (decoded.kind !== "decoded" || decoded.ders[0] === undefined) throw new Error("no certificate");
  return new Uint8Array(decoded.ders[0]);
}

describe("isPlainCertificateDer", () => {
  it("admits the certificates of certgate's dev CA and of openssl, CA and leaf", async () => {
    const issued = await openssl.issue("plain-client", "0x1234");
    for (const der of [ca.der, leaf.der, derOf(openssl.cert), derOf(issued.cert)]) {
      expect(isPlainCertificateDer(der)).toBe(true);
      expect(Buffer.from(parseCertificate(der).der).equals(Buffer.from(der))).toBe(true);
    }
  });

  it("refuses what parseCertificate refuses", () => {
    for (const [name, der] of Object.entries(nonDerVariants(leaf.der))) {
      expect(() => parseCertificate(der), name).toThrow();
      expect(isPlainCertificateDer(der), name).toBe(false);
    }
  });

  it("refuses BER lengths anywhere, and what is not a certificate", () => {
    // The serial number's length in the long form: OpenSSL keeps the bytes of
    // the tbsCertificate as given, so only this check sees it.
    const der = leaf.der;
    expect([der[4], der[5]]).toEqual([0x30, 0x82]);
    const serialAt = der[8] === 0xa0 ? 13 : 8;
    const serialLength = der[serialAt + 1] ?? 0;
    const tbsEnd = 8 + (((der[6] ?? 0) << 8) | (der[7] ?? 0));
    const header = (tag: number, length: number) => Buffer.from([tag, 0x82, length >> 8, length & 0xff]);
    const withSerialLength = (octets: number[]) => {
      const tbs = Buffer.concat([
        der.subarray(8, serialAt + 1),
        Buffer.from(octets),
        der.subarray(serialAt + 2, tbsEnd),
      ]);
      const body = Buffer.concat([header(0x30, tbs.length), tbs, der.subarray(tbsEnd)]);
      return new Uint8Array(Buffer.concat([header(0x30, body.length), body]));
    };
    expect(isPlainCertificateDer(withSerialLength([serialLength]))).toBe(true);
    expect(isPlainCertificateDer(withSerialLength([0x81, serialLength]))).toBe(false);
    for (const junk of [new Uint8Array(), Uint8Array.of(0x30, 0x00), Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x00)]) {
      expect(isPlainCertificateDer(junk)).toBe(false);
    }
  });
});
