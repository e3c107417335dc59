import { beforeAll, describe, expect, it } from "vitest";
import { readTlv } from "../../src/core/der.js";
import { readTbsFields } from "../../src/core/tbs-fields.js";
import { readCertificateExtensions } from "../../src/policy/certificate-extensions.js";
import { createDevCa, issueDevCertificate, type IssuedCertificate } from "../../src/dev-certificates.js";

let ca: IssuedCertificate;
let leaf: IssuedCertificate;
beforeAll(async () => {
  ca = await createDevCa();
  leaf = await issueDevCertificate(ca, { commonName: "tbs" });
});

const bytesOf = (der: Uint8Array, tlv: { start: number; end: number } | undefined) =>
  tlv === undefined ? undefined : Buffer.from(der.subarray(tlv.start, tlv.end));

describe("readTbsFields()", () => {
  it("locates every field of a v3 certificate, the extensions inside [3]", () => {
    const der = leaf.der;
    const fields = readTbsFields(der);
    expect(fields.version?.tag).toBe(0xa0);
    expect(fields.serialNumber?.tag).toBe(0x02);
    for (const name of ["signature", "issuer", "validity", "subject", "subjectPublicKeyInfo"] as const) {
      expect(fields[name]?.tag, name).toBe(0x30);
    }
    expect(fields.extensions?.tag).toBe(0x30);
    expect(fields.extensions!.end).toBe(fields.tbs.end);
    // The issuer of the leaf is the subject of the CA, byte for byte.
    expect(bytesOf(der, fields.issuer)).toEqual(bytesOf(ca.der, readTbsFields(ca.der).subject));
    expect(readCertificateExtensions(der).map((e) => e.oid)).toContain("2.5.29.19");
  });

  it("stops at the field asked for, reading nothing after it", () => {
    const fields = readTbsFields(leaf.der, "validity");
    expect(fields.validity).toEqual(readTbsFields(leaf.der).validity);
    expect(fields.subject).toBeUndefined();
    expect(fields.extensions).toBeUndefined();
    expect(readTbsFields(leaf.der, "subject").subject).toEqual(readTbsFields(leaf.der).subject);
  });

  it("reads a v1 certificate (no version, no extensions) and refuses what is not a certificate", () => {
    // The leaf's tbsCertificate without its version and extensions, re-wrapped.
    const der = leaf.der;
    const full = readTbsFields(der);
    const body = Buffer.from(der.subarray(full.serialNumber!.start, full.subjectPublicKeyInfo!.end));
    const tbs = Buffer.concat([Buffer.from([0x30, 0x82, body.length >> 8, body.length & 0xff]), body]);
    const outer = Buffer.concat([Buffer.from([0x30, 0x82, tbs.length >> 8, tbs.length & 0xff]), tbs]);
    const v1 = readTbsFields(outer);
    expect(v1.version).toBeUndefined();
    expect(v1.extensions).toBeUndefined();
    expect(bytesOf(outer, v1.subject)).toEqual(bytesOf(der, full.subject));
    expect(readCertificateExtensions(outer)).toEqual([]);
    expect(readTlv(outer, 0).end).toBe(outer.length);
    for (const junk of [new Uint8Array([0x30, 0x00]), new Uint8Array([0x30, 0x82, 0x01]), new Uint8Array(0)]) {
      expect(() => readTbsFields(junk)).toThrow(RangeError);
    }
  });
});
