import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { childrenOf, decodeDirectoryString, decodeOid, decodeTime, inspectDer, readTlv } from "../../src/core/der.js";
import { createDevCa } from "../../src/dev-certificates.js";
import { params } from "../support/property.js";

const bytes = (...b: number[]) => new Uint8Array(b);

describe("readTlv()", () => {
  it("admits short and long lengths, and reports where the contents sit", () => {
    expect(readTlv(bytes(0x04, 0x02, 0xaa, 0xbb), 0)).toEqual({ tag: 0x04, start: 0, contentStart: 2, end: 4 });
    const long = new Uint8Array(3 + 200).fill(0);
    long.set([0x04, 0x81, 200]);
    expect(readTlv(long, 0)).toEqual({ tag: 0x04, start: 0, contentStart: 3, end: 203 });
  });

  it("refuses truncated input, high tag numbers, indefinite and overlong lengths, and overruns, with a RangeError", () => {
    for (const input of [
      bytes(),
      bytes(0x04),
      bytes(0x1f, 0x01, 0x00), // high tag number
      bytes(0x30, 0x80, 0x00, 0x00), // indefinite length
      bytes(0x04, 0x85, 1, 0, 0, 0, 0), // five length octets
      bytes(0x04, 0x03, 0xaa), // runs past the buffer
    ]) {
      expect(() => readTlv(input, 0)).toThrow(RangeError);
    }
    // ...and past its container.
    expect(() => readTlv(bytes(0x04, 0x02, 0xaa, 0xbb), 0, 3)).toThrow(/past its container/);
  });
});

describe("childrenOf()", () => {
  it("admits the elements of a SEQUENCE, all or the first max", () => {
    const seq = bytes(0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02);
    const outer = readTlv(seq, 0);
    expect(childrenOf(seq, outer).map((c) => seq[c.contentStart])).toEqual([1, 2]);
    expect(childrenOf(seq, outer, 1)).toHaveLength(1);
  });

  it("refuses a child that runs past its parent", () => {
    const seq = bytes(0x30, 0x03, 0x02, 0x05, 0x01, 0x00, 0x00, 0x00);
    expect(() => childrenOf(seq, readTlv(seq, 0))).toThrow(RangeError);
  });
});

describe("decodeOid()", () => {
  it("decodes first arcs 0, 1 and 2 and multi-byte arcs", () => {
    const oid = (...content: number[]) => {
      const b = bytes(0x06, content.length, ...content);
      return decodeOid(b, readTlv(b, 0));
    };
    expect(oid(0x55, 0x04, 0x03)).toBe("2.5.4.3");
    expect(oid(0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b)).toBe("1.2.840.113549.1.1.11");
    expect(oid(0x09, 0x92, 0x26)).toBe("0.9.2342");
    expect(oid(0x88, 0x37, 0x01)).toBe("2.999.1");
  });
});

describe("decodeDirectoryString()", () => {
  const decode = (tag: number, content: number[]) => {
    const b = bytes(tag, content.length, ...content);
    return decodeDirectoryString(b, readTlv(b, 0));
  };
  it("admits the string types as text", () => {
    expect(decode(0x0c, [...Buffer.from("zürich", "utf8")])).toBe("zürich");
    expect(decode(0x13, [...Buffer.from("Printable", "latin1")])).toBe("Printable");
    expect(decode(0x1e, [0x00, 0x41, 0x00, 0x42])).toBe("AB");
    expect(decode(0x1c, [0, 0, 0, 0x41, 0, 1, 0xf6, 0x80])).toBe("A🚀");
  });
  it("refuses to read other types or broken UTF-8 as text: the RFC 4514 #hex form instead", () => {
    expect(decode(0x02, [0x01])).toBe("#020101");
    expect(decode(0x0c, [0xff])).toBe("#0c01ff");
  });
});

describe("inspectDer()", () => {
  it("admits a DER certificate", async () => {
    expect(inspectDer((await createDevCa()).der)).toEqual({ kind: "certificate" });
  });

  it("refuses a truncated certificate, trailing bytes, keys and PKCS#12, saying which", async () => {
    const der = (await createDevCa()).der;
    expect(inspectDer(der.subarray(0, der.length - 1))).toMatchObject({ kind: "invalid" });
    const trailing = new Uint8Array([...der, 0x00]);
    expect(inspectDer(trailing)).toEqual({ kind: "invalid", reason: "not DER: 1 bytes after the certificate" });
    // PKCS#8: SEQUENCE { INTEGER 0, AlgorithmIdentifier, OCTET STRING }
    expect(inspectDer(bytes(0x30, 0x08, 0x02, 0x01, 0x00, 0x30, 0x00, 0x04, 0x01, 0x00))).toEqual({
      kind: "private_key",
    });
    // EncryptedPrivateKeyInfo: SEQUENCE { AlgorithmIdentifier, OCTET STRING }
    expect(inspectDer(bytes(0x30, 0x05, 0x30, 0x00, 0x04, 0x01, 0x00))).toEqual({ kind: "private_key" });
    // PFX: SEQUENCE { INTEGER 3, SEQUENCE { OID 1.2.840.113549.1.7.1 ... } }
    const pkcs7 = [0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
    expect(inspectDer(bytes(0x30, 3 + 2 + pkcs7.length, 0x02, 0x01, 0x03, 0x30, pkcs7.length, ...pkcs7))).toEqual({
      kind: "pkcs12",
    });
    expect(inspectDer(bytes(0x04, 0x00))).toMatchObject({ kind: "invalid" });
  });

  it("calls real private keys private keys, and a bare version number junk", () => {
    for (const [type, encodings] of [
      ["rsa", ["pkcs1", "pkcs8"]],
      ["ec", ["sec1", "pkcs8"]],
      ["ed25519", ["pkcs8"]],
    ] as const) {
      const keyPair: unknown = generateKeyPairSync(
        type as "rsa",
        { modulusLength: 1024, namedCurve: "P-256" } as never,
      );
      const { privateKey } = keyPair as { privateKey: KeyObject };
      for (const encoding of encodings) {
        const der = privateKey.export({ format: "der", type: encoding as "pkcs1" });
        expect(inspectDer(der), `${type} ${encoding}`).toEqual({ kind: "private_key" });
      }
    }
    // SEQUENCE { INTEGER 0 } and SEQUENCE { INTEGER 1, INTEGER 5 }
    expect(inspectDer(Buffer.from("MAMCAQA=", "base64"))).toEqual({ kind: "invalid", reason: "not a certificate" });
    expect(inspectDer(bytes(0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x05))).toEqual({
      kind: "invalid",
      reason: "not a certificate",
    });
  });
});

describe("decodeTime()", () => {
  const time = (tag: number, text: string) => {
    const content = Buffer.from(text, "latin1");
    return decodeTime(
      new Uint8Array([tag, content.length, ...content]),
      readTlv(new Uint8Array([tag, content.length, ...content]), 0),
    );
  };

  it("reads UTCTime in RFC 5280's window and GeneralizedTime, to the second", () => {
    expect(time(0x17, "491231235959Z").toISOString()).toBe("2049-12-31T23:59:59.000Z");
    expect(time(0x17, "500101000000Z").toISOString()).toBe("1950-01-01T00:00:00.000Z");
    expect(time(0x18, "20500101120000Z").toISOString()).toBe("2050-01-01T12:00:00.000Z");
  });

  it("refuses other forms with a RangeError: fractions, offsets, missing Z, letters, wrong tags", () => {
    for (const [tag, text] of [
      [0x17, "4912312359Z"],
      [0x17, "491231235959+0100"],
      [0x17, "491231235959"],
      [0x18, "20500101120000.5Z"],
      [0x18, "2050010112000aZ"],
      [0x17, "49123123595 Z"],
      [0x18, "491231235959Z"],
      [0x04, "491231235959Z"],
    ] as const) {
      expect(() => time(tag, text), text).toThrow(RangeError);
    }
  });

  it("agrees with the reading of the printed digits for any digits", () => {
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 14, maxLength: 14 }),
        (utc, d) => {
          const digits = d.join("").slice(utc ? 2 : 0);
          const m = /^(\d{2,4}?)(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(digits)!;
          let year = Number(m[1]);
          if (utc) year += year < 50 ? 2000 : 1900;
          const expected = Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
          const text = `${digits}Z`;
          if (Number.isNaN(expected)) expect(() => time(utc ? 0x17 : 0x18, text)).toThrow(RangeError);
          else expect(time(utc ? 0x17 : 0x18, text).getTime()).toBe(expected);
        },
      ),
      params(),
    );
  });
});
