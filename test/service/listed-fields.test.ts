import { describe, expect, it } from "vitest";
import { parseCertificate } from "../../src/core/certificate.js";
import { createDevCa, issueDevCertificate } from "../../src/dev-certificates.js";
import { readListedFields } from "../../src/service/listed-fields.js";
import { generateCertificates } from "../support/many-certificates.js";

const nodeFields = (der: Uint8Array) => {
  const c = parseCertificate(der);
  return {
    subject: c.subject,
    issuer: c.issuer,
    serialNumber: c.serialNumber,
    notBefore: c.notBefore,
    notAfter: c.notAfter,
    isCA: c.isCA,
  };
};

describe("readListedFields()", () => {
  it("reads what Node reads for client certificates, without Node's parser", async () => {
    const ca = await createDevCa({ commonName: "fields CA", subjectSuffix: "O=Contoso Ltd, OU=Platform, C=US" });
    const issued = await Promise.all([
      issueDevCertificate(ca, { commonName: "alice", usages: ["client"] }),
      issueDevCertificate(ca, {
        commonName: "api.example.com",
        subjectSuffix: "O=Example, L=Paris, ST=IDF, C=FR",
        dnsNames: ["api.example.com"],
        usages: ["client", "server"],
      }),
    ]);
    const { ders } = await generateCertificates(50, "fields");
    for (const der of [...issued.map((i) => i.der), ...ders]) {
      const fields = readListedFields(der);
      expect(fields).toBeDefined();
      expect(fields).toEqual(nodeFields(der));
    }
  });

  it("leaves CAs, escaped names and junk to Node", async () => {
    const ca = await createDevCa({ commonName: "fields CA" });
    expect(readListedFields(ca.der)).toBeUndefined();
    const escaped = await issueDevCertificate(ca, { commonName: "Doe, John", usages: ["client"] });
    expect(readListedFields(escaped.der)).toBeUndefined();
    const accented = await issueDevCertificate(ca, { commonName: "Zoë", usages: ["client"] });
    expect(readListedFields(accented.der)).toBeUndefined();
    expect(readListedFields(Buffer.from("MAMCAQA=", "base64"))).toBeUndefined();
    expect(readListedFields(new Uint8Array(0))).toBeUndefined();
  });
});
