// The PKCS#7 and PKCS#12 readers that certgate upload and the console share.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPkcs12 } from "../../src/cli/dev-p12.js";
import { parseCertificate } from "../../src/core/certificate.js";
import { readPkcs12Certificates } from "../../src/core/pkcs12-certificates.js";
import { readPkcs7Certificates } from "../../src/core/pkcs7-certificates.js";
import { createTestPki, type TestPki } from "../support/harness.js";

let tmp: string;
let pki: TestPki;
let p7b: Uint8Array;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "certgate-pkcs-"));
  pki = await createTestPki();
  await writeFile(join(tmp, "alice.pem"), pki.alice.cert);
  await writeFile(join(tmp, "ca.pem"), pki.ca.cert);
  await new Promise<void>((resolve, reject) =>
    execFile(
      "openssl",
      [
        "crl2pkcs7",
        "-nocrl",
        "-certfile",
        join(tmp, "alice.pem"),
        "-certfile",
        join(tmp, "ca.pem"),
        "-outform",
        "DER",
        "-out",
        join(tmp, "chain.p7b"),
      ],
      (error) => (error ? reject(error) : resolve()),
    ),
  );
  p7b = new Uint8Array(await readFile(join(tmp, "chain.p7b")));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe("readPkcs7Certificates()", () => {
  it("returns the exact DER of every certificate, in order", () => {
    const read = readPkcs7Certificates(p7b);
    expect(read.kind).toBe("certificates");
    if (read.kind !== "certificates") return;
    expect(read.ders.map((der) => parseCertificate(der).sha256)).toEqual([
      parseCertificate(pki.alice.cert).sha256,
      parseCertificate(pki.ca.cert).sha256,
    ]);
    expect(Buffer.from(read.ders[0]!).equals(Buffer.from(pki.alice.der))).toBe(true);
  });

  it("says not_pkcs7 for a certificate, and a problem for a truncated bundle", () => {
    expect(readPkcs7Certificates(pki.alice.der).kind).toBe("not_pkcs7");
    expect(readPkcs7Certificates(new Uint8Array([1, 2, 3])).kind).toBe("not_pkcs7");
    expect(readPkcs7Certificates(p7b.subarray(0, p7b.length - 10)).kind).toBe("not_pkcs7");
    // The outer length patched to the truncated size: a signedData that breaks inside.
    const cut = p7b.slice(0, 200);
    const broken = readPkcs7Certificates(Uint8Array.from([0x30, 0x81, cut.length - 4, ...cut.subarray(4)]));
    expect(broken.kind).not.toBe("certificates");
  });
});

describe("readPkcs12Certificates()", () => {
  it("reads the certificate with the password, counting the key it leaves encrypted", async () => {
    const p12 = await createPkcs12({ certificate: pki.alice.cert, key: pki.alice.key, password: "pw" });
    const read = await readPkcs12Certificates(p12, "pw");
    expect(read).toMatchObject({ kind: "certificates", privateKeys: 1 });
    if (read.kind !== "certificates") return;
    expect(read.ders.map((der) => parseCertificate(der).sha256)).toEqual([parseCertificate(pki.alice.cert).sha256]);
  });

  it("refuses a wrong password and bytes that are not PKCS#12", async () => {
    const p12 = await createPkcs12({ certificate: pki.alice.cert, key: pki.alice.key, password: "pw" });
    expect(await readPkcs12Certificates(p12, "nope")).toMatchObject({ kind: "problem", code: "wrong_password" });
    expect(await readPkcs12Certificates(pki.alice.der, "pw")).toMatchObject({ kind: "problem" });
    expect(await readPkcs12Certificates(new Uint8Array([0x30, 0x03, 1, 2]), "pw")).toMatchObject({
      kind: "problem",
      code: "not_pkcs12",
    });
  });
});
