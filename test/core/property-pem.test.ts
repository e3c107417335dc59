// Property tests of the PEM/DER readers: certificates from TLS peers, proxies,
// uploads, CLI files and CA bundles. No exception but the documented one
// escapes, and damaged bytes never read as the certificate they came from.
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { parseCertificate } from "../../src/core/certificate.js";
import { readPemBlocks } from "../../src/core/pem-blocks.js";
import { decodePemOrDer } from "../../src/core/pem-der.js";
import { CliError } from "../../src/cli/common.js";
import { parseCertificateBytes } from "../../src/cli/certificate-files.js";
import { issueDevCertificate, createDevCa, type IssuedCertificate } from "../../src/dev-certificates.js";
import { createCertificateSet } from "../../src/policy/certificate-set.js";
import { readTlv } from "../../src/core/der.js";
import { parseUpload } from "../../src/service/upload.js";
import { decodeCertificateFile, encodeStoredFile, readMetadata } from "../../src/stores/directory/certificate-file.js";
import { attempt, hostileString, mutatedBytes, mutatedText, params, returnsOrThrows } from "../support/property.js";

let alice: IssuedCertificate;
let ca: IssuedCertificate;
let aliceSha256: string;
beforeAll(async () => {
  ca = await createDevCa({ commonName: "property CA" });
  alice = await issueDevCertificate(ca, { commonName: "alice", usages: ["client"] });
  aliceSha256 = parseCertificate(alice.der).sha256;
});

describe("readPemBlocks()", () => {
  it("never throws, and reads every block of a bundle back byte for byte", () => {
    fc.assert(
      fc.property(hostileString, (text) => {
        for (const block of readPemBlocks(text)) {
          expect(typeof block.label).toBe("string");
          expect(block.der === undefined || block.der instanceof Uint8Array).toBe(true);
        }
      }),
      params(),
    );
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 64 }), { maxLength: 5 }),
        fc.string({ maxLength: 20 }),
        (ders, junk) => {
          const pem = ders
            .map(
              (d) =>
                `-----BEGIN CERTIFICATE-----\n${Buffer.from(d)
                  .toString("base64")
                  .replace(/(.{64})/g, "$1\n")}\n-----END CERTIFICATE-----\n`,
            )
            .join(junk.replace(/-/g, ""));
          const blocks = readPemBlocks(pem);
          expect(blocks.map((b) => Buffer.from(b.der!).toString("hex"))).toEqual(
            ders.map((d) => Buffer.from(d).toString("hex")),
          );
        },
      ),
      params(),
    );
  });
});

describe("decodePemOrDer() (the one PEM/DER reader)", () => {
  it("never throws, and what it decodes is whole DER elements", () => {
    const bundle = `explanatory text\n${alice.cert}${ca.cert}`;
    fc.assert(
      fc.property(
        fc.oneof(
          mutatedText(bundle + alice.key),
          mutatedText(bundle).map((t) => new Uint8Array(Buffer.from(t, "latin1"))),
          mutatedBytes(alice.der),
          fc.uint8Array({ maxLength: 200 }),
          hostileString,
        ),
        fc.constantFrom<"refuse" | "count">("refuse", "count"),
        (input, privateKeys) => {
          const decoded = decodePemOrDer(input, { privateKeys });
          if (decoded.kind === "problem") return;
          for (const der of decoded.ders) {
            const copy = new Uint8Array(der);
            expect(readTlv(copy, 0).end).toBe(copy.length);
          }
        },
      ),
      params(),
    );
  });
});

describe("parseCertificate()", () => {
  it("reads damaged DER as another certificate or throws an Error, never as the original", () => {
    fc.assert(
      fc.property(mutatedBytes(alice.der), (der) => {
        const result = attempt(() => parseCertificate(der));
        if (!result.ok) {
          expect(result.error).toBeInstanceOf(Error);
          return;
        }
        // What parses is exactly the bytes given: no trailing junk ignored.
        expect(Buffer.from(result.value.der).equals(Buffer.from(der))).toBe(true);
        expect(result.value.sha256).not.toBe(aliceSha256);
      }),
      params(),
    );
  });

  it("refuses DER that OpenSSL reads as other bytes: a signature BIT STRING with its unused bits set (found by the property above)", () => {
    // alice's signature BIT STRING, declared with one unused bit whose value is 1.
    const der = Uint8Array.from(alice.der);
    // The signature: the BIT STRING (03 len 00) that ends the certificate.
    let at = -1;
    for (let i = der.length - 3; i > 0; i--) {
      if (der[i] === 0x03 && der[i + 1] === der.length - i - 2 && der[i + 2] === 0x00) {
        at = i;
        break;
      }
    }
    expect(at).toBeGreaterThan(0);
    der[at + 2] = 1;
    der[der.length - 1] = (der[der.length - 1] as number) | 1;
    expect(() => parseCertificate(der)).toThrow(/not in DER form/);
  });

  it("refuses DER with bytes after the certificate, which OpenSSL would ignore (found by the property above)", () => {
    const der = new Uint8Array([...alice.der, 0]);
    expect(() => parseCertificate(der)).toThrow(TypeError);
    expect(parseCertificate(alice.der).sha256).toBe(aliceSha256);
  });

  it("throws an Error for arbitrary bytes and text", () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), hostileString), (input) => {
        returnsOrThrows(() => parseCertificate(input), Error);
      }),
      params(),
    );
  });
});

describe("parseCertificateBytes() (certgate's CLI files)", () => {
  it("returns certificates or throws a CliError, for damaged PEM bundles and DER", () => {
    const bundle = alice.cert + alice.key + ca.cert;
    fc.assert(
      fc.property(
        fc.oneof(
          mutatedText(bundle).map((t) => new Uint8Array(Buffer.from(t, "latin1"))),
          mutatedBytes(alice.der),
        ),
        (bytes) => {
          const file = returnsOrThrows(() => parseCertificateBytes("f.pem", bytes), CliError);
          for (const c of file?.certificates ?? []) expect(c.der.length).toBeGreaterThan(0);
        },
      ),
      params(),
    );
  });
});

describe("parseUpload() (the store service's upload)", () => {
  it("never throws, and a damaged upload never stores alice's certificate", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          mutatedText(alice.cert).map((t) => new Uint8Array(Buffer.from(t, "latin1"))),
          mutatedBytes(alice.der),
          fc.uint8Array({ maxLength: 300 }),
        ),
        (bytes) => {
          const result = parseUpload(bytes, 64 * 1024);
          if (result.kind === "certificate") {
            // Only PEM whose whitespace or surroundings were touched still
            // reads as alice: her base64, whitespace aside, is intact, but
            // for the unused bits of its last quantum (`...g=` and `...h=`
            // decode to the same bytes, as RFC 4648 lets decoders accept).
            if (result.certificate.sha256 === aliceSha256) {
              const body = alice.cert.replace(/-----[^-]+-----|\s/g, "");
              expect(Buffer.from(bytes).toString("latin1").replace(/\s/g, "")).toContain(body.slice(0, -4));
            }
          } else {
            expect(["private_key", "too_large", "invalid"]).toContain(result.kind);
          }
        },
      ),
      params(),
    );
  });
});

describe("decodeCertificateFile() (the folder store's files)", () => {
  // The folder store checks the DER's structure, not its contents (it does
  // not parse certificates, to stay small at 100k files): what it returns is
  // whole DER elements, and whatever of them Node can parse is exactly them.
  it("never throws on damaged bundles and DER; what it returns is whole DER elements", () => {
    const bundle = `explanatory text\n${alice.cert}${ca.cert}`;
    fc.assert(
      fc.property(
        fc.oneof(
          mutatedText(bundle).map((t) => new Uint8Array(Buffer.from(t, "latin1"))),
          mutatedBytes(alice.der),
          fc.uint8Array({ maxLength: 200 }),
        ),
        (bytes) => {
          const decoded = decodeCertificateFile(bytes);
          if (decoded.kind === "problem") return;
          for (const der of decoded.ders) {
            const copy = new Uint8Array(der);
            expect(readTlv(copy, 0).end).toBe(copy.length);
            const parsed = attempt(() => parseCertificate(copy));
            if (parsed.ok) expect(parsed.value.der).toEqual(copy);
          }
          readMetadata(bytes);
        },
      ),
      params(),
    );
  });

  it("reads a stored file back as exactly its one certificate and its labels, whatever the labels hold", () => {
    const labels = fc.dictionary(fc.string({ minLength: 1, maxLength: 20 }), hostileString, { maxKeys: 5 });
    fc.assert(
      fc.property(labels, (given) => {
        const file = new Uint8Array(Buffer.from(encodeStoredFile(alice.der, new Date(0), given), "utf8"));
        const decoded = decodeCertificateFile(file);
        expect(decoded.kind).toBe("certificates");
        if (decoded.kind !== "certificates") return;
        expect(decoded.ders.map((d) => Buffer.from(d).toString("hex"))).toEqual([
          Buffer.from(alice.der).toString("hex"),
        ]);
        const meta = readMetadata(file);
        expect(meta.createTime?.getTime()).toBe(0);
        // Labels that a store accepts read back as given; others read as none.
        if (Object.keys(meta.labels).length > 0) expect(meta.labels).toEqual(given);
      }),
      params(),
    );
  });
});

describe("createCertificateSet() (CA bundles)", () => {
  it("returns a set or throws a TypeError for damaged bundles", () => {
    fc.assert(
      fc.property(mutatedText(ca.cert + ca.cert), (text) => {
        returnsOrThrows(() => createCertificateSet([text]), TypeError);
      }),
      params(0.5),
    );
  });
});
