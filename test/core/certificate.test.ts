import { X509Certificate } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import {
  normalizeThumbprint,
  parseCertificate,
  readPemBlocks,
  thumbprintsEqual,
  thumbprintsOfDer,
} from "../../src/index.js";
import { thumbprintAlgorithm } from "../../src/core/thumbprint.js";
import { createDevCa, issueDevCertificate, type IssuedCertificate } from "../../src/dev-certificates.js";

// Thumbprints computed by Node itself (colon-separated fingerprints), so the
// expectations do not come from the code under test.
function nodeThumbprints(pem: string): { sha1: string; sha256: string } {
  const x = new X509Certificate(pem);
  return { sha1: x.fingerprint.replace(/:/g, ""), sha256: x.fingerprint256.replace(/:/g, "") };
}

function pairs(hex: string, separator: string): string {
  return hex.match(/../g)!.join(separator);
}

let ca: IssuedCertificate;
let leaf: IssuedCertificate;
let sha1: string;
let sha256: string;
const notBefore = new Date("2020-01-02T03:04:05Z");
const notAfter = new Date("2060-01-02T03:04:05Z"); // after 2049: GeneralizedTime

beforeAll(async () => {
  ca = await createDevCa({ commonName: "certgate unit CA" });
  leaf = await issueDevCertificate(ca, {
    commonName: "alice, the client",
    subjectSuffix: "O=Contoso, C=US",
    notBefore,
    notAfter,
    dnsNames: ["alice.example", "odd,name.example"],
    ipAddresses: ["127.0.0.1", "::1"],
    uris: ["spiffe://example.org/ns/prod/sa/alice"],
    serialNumber: "0a1b2c3d4e5f",
    usages: ["client"],
  });
  ({ sha1, sha256 } = nodeThumbprints(leaf.cert));
});

describe("normalizeThumbprint()", () => {
  const spellings: [string, (hex: string) => string][] = [
    ["upper case", (h) => h],
    ["lower case", (h) => h.toLowerCase()],
    ["colons", (h) => pairs(h, ":")],
    ["lower case with colons", (h) => pairs(h.toLowerCase(), ":")],
    ["spaces", (h) => pairs(h, " ")],
    ["surrounding whitespace and a newline", (h) => `  ${h}\n`],
    ["a leading U+200E (left-to-right mark, as certmgr copies it)", (h) => `\u200e${pairs(h.toLowerCase(), " ")}`],
    ["a U+200F (right-to-left mark)", (h) => `\u200f${h}\u200f`],
    ["a U+FEFF (byte order mark)", (h) => `\ufeff${h}`],
    ["all of them at once", (h) => `\ufeff\u200e ${pairs(h.toLowerCase(), ":")} \u200f`],
  ];
  for (const [what, spell] of spellings) {
    it(`admits a SHA-1 thumbprint with ${what}`, () => {
      expect(normalizeThumbprint(spell(sha1))).toBe(sha1);
    });
    it(`admits a SHA-256 thumbprint with ${what}`, () => {
      expect(normalizeThumbprint(spell(sha256))).toBe(sha256);
    });
  }

  it("admits 40 and 64 hex digits as SHA-1 and SHA-256", () => {
    expect(thumbprintAlgorithm(normalizeThumbprint(sha1.toLowerCase()))).toBe("sha1");
    expect(thumbprintAlgorithm(normalizeThumbprint(sha256.toLowerCase()))).toBe("sha256");
  });

  const malformed: [string, () => string, string][] = [
    ["39 hex digits", () => sha1.slice(1), "39 hex digits"],
    ["41 hex digits", () => `${sha1}A`, "41 hex digits"],
    ["63 hex digits", () => sha256.slice(1), "63 hex digits"],
    ["65 hex digits", () => `${sha256}0`, "65 hex digits"],
    ["a non-hex letter", () => `${sha1.slice(0, 39)}G`, "hex digits"],
    ["a 0x prefix", () => `0x${sha1}`, "hex digits"],
    ["an openssl label", () => `SHA1 Fingerprint=${pairs(sha1, ":")}`, "hex digits"],
    ["two thumbprints in one string", () => `${sha1},${sha1}`, "hex digits"],
  ];
  for (const [what, value, detail] of malformed) {
    it(`refuses ${what}, naming the value`, () => {
      const text = value();
      expect(() => normalizeThumbprint(text)).toThrow(TypeError);
      expect(() => normalizeThumbprint(text)).toThrow(text);
      expect(() => normalizeThumbprint(text)).toThrow(detail);
    });
  }

  it("refuses an empty string", () => {
    expect(() => normalizeThumbprint("")).toThrow(/invalid thumbprint "": empty/);
  });

  it("refuses separators and invisible characters only", () => {
    expect(() => normalizeThumbprint(" \u200e: \ufeff")).toThrow(/invalid thumbprint .*: empty/);
  });

  it("refuses a PEM certificate pasted by mistake, saying so without dumping it", () => {
    let message = "";
    try {
      normalizeThumbprint(leaf.cert);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain("-----BEGIN CERTIFICATE-----");
    expect(message).toContain("PEM");
    expect(message.length).toBeLessThan(300);
  });

  it("refuses a value that is not a string, naming it", () => {
    expect(() => normalizeThumbprint(undefined as unknown as string)).toThrow(/invalid thumbprint undefined/);
    expect(() => normalizeThumbprint(1234 as unknown as string)).toThrow(/invalid thumbprint 1234/);
  });
});

describe("thumbprintsEqual()", () => {
  it("admits equal thumbprints", () => {
    expect(thumbprintsEqual(sha256, normalizeThumbprint(sha256.toLowerCase()))).toBe(true);
  });
  it("refuses thumbprints that differ in one digit or in length", () => {
    const other = `${sha256.slice(0, 63)}${sha256.endsWith("0") ? "1" : "0"}`;
    expect(thumbprintsEqual(sha256, other)).toBe(false);
    expect(thumbprintsEqual(sha256, sha1)).toBe(false);
  });
});

describe("thumbprintsOfDer()", () => {
  it("admits the thumbprints Node computes", () => {
    expect(thumbprintsOfDer(leaf.der)).toEqual({ sha1, sha256 });
  });
  it("refuses to confuse two certificates", () => {
    expect(thumbprintsOfDer(ca.der).sha256).not.toBe(sha256);
  });
});

describe("parseCertificate()", () => {
  it("admits PEM, DER and a Node X509Certificate alike", () => {
    const fromPem = parseCertificate(leaf.cert);
    const fromDer = parseCertificate(leaf.der);
    const fromX509 = parseCertificate(new X509Certificate(leaf.cert));
    for (const c of [fromPem, fromDer, fromX509]) {
      expect(c.sha1).toBe(sha1);
      expect(c.sha256).toBe(sha256);
      expect(Buffer.from(c.der).equals(Buffer.from(leaf.der))).toBe(true);
    }
  });

  it("admits the fields people look at", () => {
    const c = parseCertificate(leaf.cert);
    expect(c.subject.split("\n")).toEqual(["CN=alice\\, the client", "O=Contoso", "C=US"]);
    expect(c.issuer).toBe("CN=certgate unit CA");
    expect(c.serialNumber).toBe("0A1B2C3D4E5F");
    expect(c.notBefore.toISOString()).toBe(notBefore.toISOString());
    expect(c.notAfter.toISOString()).toBe(notAfter.toISOString());
    expect(c.subjectAltNames).toEqual({
      dns: ["alice.example", "odd,name.example"],
      uri: ["spiffe://example.org/ns/prod/sa/alice"],
      email: [],
      ip: ["127.0.0.1", "0:0:0:0:0:0:0:1"],
    });
    expect(c.isCA).toBe(false);
    expect(parseCertificate(ca.cert).isCA).toBe(true);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it("admits the first certificate of a chain", () => {
    expect(parseCertificate(`${leaf.cert}\n${ca.cert}`).sha256).toBe(sha256);
  });

  it("refuses input that is not a certificate", () => {
    expect(() => parseCertificate(leaf.key)).toThrow();
    expect(() => parseCertificate("")).toThrow();
    expect(() => parseCertificate(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x01]))).toThrow();
  });
});

describe("readPemBlocks()", () => {
  it("admits every block in order with its bytes", () => {
    const blocks = readPemBlocks(`${leaf.key}\n${leaf.cert}\n${ca.cert}\n`);
    expect(blocks.map((b) => b.label)).toEqual(["PRIVATE KEY", "CERTIFICATE", "CERTIFICATE"]);
    expect(Buffer.from(blocks[1]!.der!).equals(Buffer.from(leaf.der))).toBe(true);
  });
  it("refuses a block with broken base64 (der undefined) and text without blocks", () => {
    const broken = "-----BEGIN CERTIFICATE-----\nnot*base64\n-----END CERTIFICATE-----";
    expect(readPemBlocks(broken)).toEqual([{ label: "CERTIFICATE", der: undefined }]);
    expect(readPemBlocks(sha1)).toEqual([]);
  });
});
