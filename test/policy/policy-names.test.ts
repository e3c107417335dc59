import { X509Certificate } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { parseCertificate, type Certificate } from "../../src/core/certificate.js";
import { identityOf } from "../../src/policy/client-identity.js";
import { readCertificateNames } from "../../src/policy/certificate-names.js";
import { distinguishedNamesEqual } from "../../src/policy/distinguished-name.js";
import { formatDistinguishedName, parseDistinguishedName } from "../../src/policy/distinguished-name-text.js";
import { compileIdentities, type CertificateIdentity } from "../../src/policy/identity-match.js";
import { compileUriPattern, parseSpiffeId } from "../../src/policy/spiffe.js";
import { createPolicyPki, issue, type PolicyPki } from "../support/policy-pki.js";

let pki: PolicyPki;
let alice: Certificate;
let bob: Certificate;
let root: Certificate;
let other: Certificate;
beforeAll(async () => {
  pki = await createPolicyPki();
  alice = parseCertificate(pki.leaf1.cert);
  bob = parseCertificate(pki.leaf2.cert);
  root = parseCertificate(pki.root.cert);
  other = parseCertificate(pki.otherRoot.cert);
});

describe("parseDistinguishedName()", () => {
  // alice: C=US, O=Contoso, Inc., OU=Payments, CN=alice (ASN.1 order, CN first in the encoding here).
  const same = [
    ["RFC 4514", "CN=alice,OU=Payments,O=Contoso\\, Inc.,C=US"],
    ["reversed display order", "C=US,O=Contoso\\, Inc.,OU=Payments,CN=alice"],
    ["spaces after commas and quoting", 'CN=alice, OU=Payments, O="Contoso, Inc.", C=US'],
    ["OpenSSL display form", 'C = US, O = "Contoso, Inc.", OU = Payments, CN = alice'],
    ["OpenSSL slash form", "/C=US/O=Contoso, Inc./OU=Payments/CN=alice"],
    ["case of types and case-insensitive values", 'cn=ALICE; ou=payments; o="CONTOSO, INC."; c=us'],
    [
      "hex escapes and long names",
      "commonName=alice,organizationalUnitName=Payments,O=Contoso\\2C Inc.,OID.2.5.4.6=US",
    ],
    ["extra inner spaces", "CN=alice,OU=Payments,O=Contoso,   Inc.,C=US".replace(",   Inc.", "\\,   Inc.")],
    ["Node's one-per-line form", "CN=alice\nOU=Payments\nO=Contoso\\, Inc.\nC=US"],
    ["a BER-encoded value", "CN=#0c05616c696365,OU=Payments,O=Contoso\\, Inc.,C=US"],
  ] as const;
  it.each(same)("admits the same name written in %s", (_, text) => {
    expect(distinguishedNamesEqual(parseDistinguishedName(text), readCertificateNames(alice.der).subject)).toBe(true);
  });
  const different = [
    ["a missing RDN", "CN=alice,O=Contoso\\, Inc.,C=US"],
    ["another country", "CN=alice,OU=Payments,O=Contoso\\, Inc.,C=GB"],
    ["a scrambled order (neither order nor its reverse)", "OU=Payments,CN=alice,O=Contoso\\, Inc.,C=US"],
    ["another type for a value", "CN=alice,O=Payments,O=Contoso\\, Inc.,C=US"],
    ["a longer name", "CN=alice,OU=Payments,O=Contoso\\, Inc.,C=US,DC=example"],
  ] as const;
  it.each(different)("refuses a name with %s", (_, text) => {
    expect(distinguishedNamesEqual(parseDistinguishedName(text), readCertificateNames(alice.der).subject)).toBe(false);
  });
  it("admits Node's own subject string of the certificate", () => {
    const node = new X509Certificate(pki.leaf1.cert).subject;
    expect(distinguishedNamesEqual(parseDistinguishedName(node), readCertificateNames(alice.der).subject)).toBe(true);
  });
  it("refuses case differences in a case-exact attribute type", () => {
    // 2.5.4.45 (x500UniqueIdentifier) has no case-insensitive rule: compared exactly.
    expect(
      distinguishedNamesEqual(parseDistinguishedName("2.5.4.45=Abc"), parseDistinguishedName("2.5.4.45=abc")),
    ).toBe(false);
    expect(
      distinguishedNamesEqual(parseDistinguishedName("2.5.4.45=Abc"), parseDistinguishedName("2.5.4.45= Abc ")),
    ).toBe(true);
  });
  it("compares multi-valued RDNs as sets", () => {
    expect(
      distinguishedNamesEqual(parseDistinguishedName("CN=a+OU=b,O=c"), parseDistinguishedName("OU=b + CN=a, O=c")),
    ).toBe(true);
    expect(
      distinguishedNamesEqual(parseDistinguishedName("CN=a+OU=b,O=c"), parseDistinguishedName("CN=a,OU=b,O=c")),
    ).toBe(false);
  });
  it.each([
    ["an unknown keyword", "CN=alice,Organisation=Contoso"],
    ["an unterminated quote", 'CN="alice'],
    ["no equals sign", "CN=alice,Contoso"],
    ["a trailing separator", "CN=alice,"],
    ["a dangling backslash", "CN=alice\\"],
    ["a bad hex value", "CN=#zz"],
    ["a comma not escaped in a value", "CN=alice,OU=Payments,O=Contoso, Inc.,C=US"],
  ])("throws on %s", (_, text) => {
    expect(() => parseDistinguishedName(text)).toThrow(TypeError);
  });
  it("formats names in RFC 4514 order with escapes", () => {
    expect(formatDistinguishedName(readCertificateNames(alice.der).subject)).toBe(
      "C=US,O=Contoso\\, Inc.,OU=Payments,CN=alice",
    );
  });
});

describe("compileUriPattern()", () => {
  const prefix = compileUriPattern("spiffe://example.org/ns/prod/*");
  const domain = compileUriPattern("spiffe://example.org/*");
  it.each(["spiffe://example.org/ns/prod/sa/api", "spiffe://example.org/ns/prod/x"])(
    "admits %s under the prefix",
    (uri) => {
      expect(prefix.matches(uri)).toBe(true);
      expect(domain.matches(uri)).toBe(true);
    },
  );
  it.each([
    "spiffe://example.org.evil/ns/prod/sa/api",
    "spiffe://example.org/ns/production/sa",
    "spiffe://example.org/ns/prod",
    "spiffe://example.org/ns/prod/",
    "spiffe://example.org/ns/prod/../../admin",
    "spiffe://example.org/ns/prod/./x",
    "spiffe://example.org/ns/prod//x",
    "spiffe://example.org/ns/prod/%2e%2e/x",
    "spiffe://example.org/ns/prod/x?y",
    "spiffe://example.org:443/ns/prod/x",
    "spiffe://user@example.org/ns/prod/x",
    "SPIFFE://example.org/ns/prod/x",
    "spiffe://EXAMPLE.org/ns/prod/x",
    "https://example.org/ns/prod/x",
  ])("refuses %s", (uri) => {
    expect(prefix.matches(uri)).toBe(false);
  });
  it("matches other URIs exactly", () => {
    const exact = compileUriPattern("https://example.org/a");
    expect(exact.matches("https://example.org/a")).toBe(true);
    expect(exact.matches("https://example.org/a/b")).toBe(false);
  });
  it.each(["spiffe://example.org/a*", "spiffe://*/x", "https://example.org/*", "spiffe://Example.org/*", "*"])(
    "throws on the pattern %s",
    (p) => {
      expect(() => compileUriPattern(p)).toThrow(TypeError);
    },
  );
  it("parses SPIFFE IDs", () => {
    expect(parseSpiffeId("spiffe://example.org/a/b")).toEqual({ trustDomain: "example.org", path: "/a/b" });
    expect(parseSpiffeId("spiffe://example.org")).toEqual({ trustDomain: "example.org", path: "" });
    expect(parseSpiffeId("spiffe://example.org/a/")).toBeUndefined();
  });
});

describe("compileIdentities()", () => {
  const facts = (certificate: Certificate, chain?: Certificate[]) => ({
    certificate,
    chain,
    issuerById: async (id: string) => (id === "root-ca" ? root : id === "other-ca" ? other : undefined),
  });
  const match = (identities: CertificateIdentity[], certificate = alice, chain?: Certificate[]) =>
    compileIdentities(identities, "identities").match(facts(certificate, chain));

  const fieldCases: [string, () => CertificateIdentity, () => CertificateIdentity][] = [
    [
      "thumbprint (SHA-1, pasted)",
      () => ({ thumbprint: alice.sha1.toLowerCase().replace(/(..)/g, "$1:").slice(0, -1) }),
      () => ({ thumbprint: bob.sha1 }),
    ],
    ["thumbprint (SHA-256)", () => ({ thumbprint: alice.sha256 }), () => ({ thumbprint: bob.sha256 })],
    [
      "serialNumber",
      () => ({ serialNumber: `00:${alice.serialNumber.toLowerCase()}` }),
      () => ({ serialNumber: bob.serialNumber }),
    ],
    ["commonName", () => ({ commonName: " ALICE " }), () => ({ commonName: "alicia" })],
    [
      "subject",
      () => ({ subject: 'C=US, O="Contoso, Inc.", OU=Payments, CN=alice' }),
      () => ({ subject: "CN=alice,O=Contoso\\, Inc.,C=US" }),
    ],
    ["dnsName", () => ({ dnsName: "ALICE.example.org." }), () => ({ dnsName: "bob.example.org" })],
    [
      "uri (exact)",
      () => ({ uri: "spiffe://example.org/ns/prod/sa/alice" }),
      () => ({ uri: "spiffe://example.org/ns/prod/sa/bob" }),
    ],
    [
      "uri (SPIFFE prefix)",
      () => ({ uri: "spiffe://example.org/ns/prod/*" }),
      () => ({ uri: "spiffe://example.org/ns/dev/*" }),
    ],
    [
      "issuerSubject",
      () => ({ issuerSubject: "CN=Policy Root, O=Contoso\\, Inc., C=US" }),
      () => ({ issuerSubject: "CN=Other Root" }),
    ],
    ["issuerThumbprint", () => ({ issuerThumbprint: root.sha256 }), () => ({ issuerThumbprint: other.sha1 })],
    ["issuerCertificateId", () => ({ issuerCertificateId: "root-ca" }), () => ({ issuerCertificateId: "other-ca" })],
  ];
  it.each(fieldCases)("admits a certificate matching %s", async (_, good) => {
    expect(await match([good()], alice, [alice, root])).toBe(true);
  });
  it.each(fieldCases)("refuses a certificate not matching %s", async (_, __, bad) => {
    expect(await match([bad()], alice, [alice, root])).toBe(false);
  });
  it("admits when every field of one identity matches", async () => {
    expect(
      await match([
        { commonName: "bob" },
        { commonName: "alice", dnsName: "alice.example.org", issuerCertificateId: "root-ca" },
      ]),
    ).toBe(true);
  });
  it("refuses when one field of each identity fails", async () => {
    expect(
      await match([
        { commonName: "alice", dnsName: "bob.example.org" },
        { commonName: "bob", dnsName: "alice.example.org" },
      ]),
    ).toBe(false);
  });
  it("refuses issuerThumbprint without a chain, and an unknown issuer id", async () => {
    expect(await match([{ issuerThumbprint: root.sha256 }], alice, undefined)).toBe(false);
    expect(await match([{ issuerCertificateId: "missing" }])).toBe(false);
  });
  it("refuses a SPIFFE prefix for a certificate with two URI SANs (not an SVID)", async () => {
    const two = parseCertificate(
      (await issue(pki.root, { commonName: "x", uris: ["spiffe://example.org/ns/prod/a", "https://x.example"] })).cert,
    );
    expect(await match([{ uri: "spiffe://example.org/ns/prod/*" }], two)).toBe(false);
    expect(await match([{ uri: "spiffe://example.org/ns/prod/a" }], two)).toBe(true);
  });
  it("rejects when the issuer look-up fails", async () => {
    const matcher = compileIdentities([{ issuerCertificateId: "root-ca" }], "identities");
    await expect(
      matcher.match({ certificate: alice, chain: undefined, issuerById: () => Promise.reject(new Error("down")) }),
    ).rejects.toThrow("down");
  });
  it.each([
    ["an empty list", []],
    ["an identity without fields", [{}]],
    ["an unknown field (a typo)", [{ commonname: "alice" }]],
    ["a bad thumbprint", [{ thumbprint: "abc" }]],
    ["a bad serial", [{ serialNumber: "xyz" }]],
    ["a bad subject", [{ subject: "Organisation=x" }]],
    ["a bad uri wildcard", [{ uri: "spiffe://example.org/a*" }]],
    ["an empty value", [{ commonName: " " }]],
  ])("throws at start-up on %s", (_, identities) => {
    expect(() => compileIdentities(identities as CertificateIdentity[], "identities")).toThrow(/identities/);
  });
});

describe("identityOf()", () => {
  it("types the subject, issuer, SANs, SPIFFE ID and thumbprints", () => {
    const id = identityOf(alice);
    expect(id.subject.commonName).toBe("alice");
    expect(id.subject.organization).toBe("Contoso, Inc.");
    expect(id.subject.organizationalUnits).toEqual(["Payments"]);
    expect(id.subject.country).toBe("US");
    expect(id.subject.text).toBe("C=US,O=Contoso\\, Inc.,OU=Payments,CN=alice");
    expect(id.issuer.commonName).toBe("Policy Root");
    expect(id.dnsNames).toEqual(["alice.example.org"]);
    expect(id.spiffeId).toBe("spiffe://example.org/ns/prod/sa/alice");
    expect(id.sha256).toBe(alice.sha256);
    expect(identityOf(alice)).toBe(id);
  });
  it("has no SPIFFE ID without a spiffe URI", () => {
    expect(identityOf(bob).spiffeId).toBeUndefined();
  });
});
