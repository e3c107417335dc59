import { beforeAll, describe, expect, it } from "vitest";
import { readPemBlocks } from "../../src/core/pem-blocks.js";
import { decodePemOrDer } from "../../src/core/pem-der.js";
import { createDevCa, issueDevCertificate, type IssuedCertificate } from "../../src/dev-certificates.js";

let ca: IssuedCertificate;
let leaf: IssuedCertificate;
beforeAll(async () => {
  ca = await createDevCa();
  leaf = await issueDevCertificate(ca, { commonName: "leaf" });
});

const text = (s: string) => new Uint8Array(Buffer.from(s, "latin1"));

describe("decodePemOrDer()", () => {
  it("decodes a bundle into one reused buffer with transient, byte for byte as without it", () => {
    const bundle = `${leaf.cert}\n${ca.cert}`;
    const own = decodePemOrDer(bundle);
    const shared = decodePemOrDer(bundle, { transient: true });
    expect(shared.kind === "decoded" && shared.ders.map((d) => Buffer.from(d).toString("hex"))).toEqual(
      own.kind === "decoded" && own.ders.map((d) => Buffer.from(d).toString("hex")),
    );
    const [a, b] = shared.kind === "decoded" ? shared.ders : [];
    expect(a!.buffer).toBe(b!.buffer);
    const again = decodePemOrDer(ca.cert, { transient: true });
    expect(again.kind === "decoded" && again.ders[0]!.buffer).toBe(a!.buffer);
    // Without transient, each DER is its own and outlives later calls.
    expect(own.kind === "decoded" && Buffer.from(own.ders[0]!).equals(Buffer.from(leaf.der))).toBe(true);
  });

  it("refuses broken base64 with transient as without it", () => {
    const broken = leaf.cert.replace(/\n([A-Za-z0-9+/]{10})/, "\n!$1");
    expect(decodePemOrDer(broken, { transient: true })).toMatchObject({ kind: "problem", code: "broken_base64" });
  });

  it("admits one DER certificate, PEM bundles with explanatory text, and concatenated DER", () => {
    const der = decodePemOrDer(leaf.der);
    expect(der).toMatchObject({ kind: "decoded", pem: false });
    expect(der.kind === "decoded" && Buffer.from(der.ders[0]!).equals(Buffer.from(leaf.der))).toBe(true);
    const bundle = decodePemOrDer(`a comment\n${leaf.cert}\nmore text\n${ca.cert}`);
    expect(bundle.kind === "decoded" && bundle.ders.map((d) => d.length)).toEqual([leaf.der.length, ca.der.length]);
    const two = decodePemOrDer(new Uint8Array([...leaf.der, ...ca.der]));
    expect(two.kind === "decoded" && two.ders).toHaveLength(2);
  });

  it("refuses a private key anywhere, by default, as the whole input", () => {
    for (const input of [leaf.key, `${leaf.cert}${leaf.key}`, text(`${leaf.cert}\nPuTTY-User-Key-File-3: x`)]) {
      expect(decodePemOrDer(input)).toMatchObject({ kind: "problem", code: "private_key" });
    }
  });

  it("counts and skips private keys and other blocks when asked", () => {
    const result = decodePemOrDer(`${leaf.key}${leaf.cert}-----BEGIN X-----\nAAAA\n-----END X-----\n`, {
      privateKeys: "count",
      otherBlocks: "skip",
    });
    expect(result).toMatchObject({ kind: "decoded", privateKeys: 1, skipped: ["X"] });
    expect(result.kind === "decoded" && result.ders).toHaveLength(1);
  });

  it("refuses broken armour, broken base64, other blocks, junk and empty input, naming the block", () => {
    const cases: [string | Uint8Array, string, number | undefined][] = [
      [new Uint8Array(0), "empty", undefined],
      ["hello", "not_pem_or_der", undefined],
      [leaf.cert.replace("-----END CERTIFICATE-----", ""), "broken_pem", 1],
      [`${leaf.cert}${leaf.cert.replace(/\n[A-Za-z0-9+/]{4}/, "\n!!!!")}`, "broken_base64", 2],
      ["-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", "other_block", 1],
      [
        `-----BEGIN CERTIFICATE-----\n${Buffer.from("not a certificate").toString("base64")}\n-----END CERTIFICATE-----\n`,
        "invalid",
        1,
      ],
      [new Uint8Array([0x30, 0x05, 0x00]), "invalid", undefined],
    ];
    for (const [input, code, block] of cases) {
      const result = decodePemOrDer(input);
      expect(result, code).toMatchObject({ kind: "problem", code });
      expect(result.kind === "problem" ? result.block : "decoded", code).toBe(block);
    }
  });

  it("reads CRL labels when asked, without the certificate check", () => {
    const crl = "-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----\n";
    expect(decodePemOrDer(crl, { labels: ["X509 CRL", "CRL"] })).toMatchObject({ kind: "decoded", pem: true });
    expect(decodePemOrDer(crl)).toMatchObject({ kind: "problem", code: "other_block" });
  });
});

describe("readPemBlocks()", () => {
  it("lists whole blocks up to a truncated one", () => {
    const blocks = readPemBlocks(`${leaf.cert}-----BEGIN CERTIFICATE-----\nAAAA`);
    expect(blocks.map((b) => b.label)).toEqual(["CERTIFICATE"]);
  });
});
