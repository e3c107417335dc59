// Property tests of serial numbers: any text becomes the canonical form or a
// TypeError; DER INTEGER bytes read as the integer they encode (checked with
// BigInt), and every spelling of one number compares equal.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canonicalSerialNumber, serialNumberOfDer } from "../../src/core/serial-number.js";
import { hostileString, params, returnsOrThrows } from "../support/property.js";

const canonical = /^-?(?:[0-9A-F]{2})+$/;

// The value of two's-complement big-endian bytes, as BigInt.
function bigIntOf(bytes: Uint8Array): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return (bytes[0] ?? 0) & 0x80 ? v - (1n << BigInt(8 * bytes.length)) : v;
}

function formatOf(v: bigint): string {
  const hex = (v < 0n ? -v : v).toString(16).toUpperCase();
  return `${v < 0n ? "-" : ""}${hex.length % 2 ? "0" : ""}${hex}`;
}

// Minimal two's-complement encoding of v, as a DER INTEGER's contents.
function derOf(v: bigint): Uint8Array {
  const bytes: number[] = [];
  let x = v;
  for (;;) {
    bytes.unshift(Number(x & 0xffn));
    x >>= 8n;
    const sign = (bytes[0] ?? 0) & 0x80;
    if ((x === 0n && !sign) || (x === -1n && sign)) break;
  }
  return new Uint8Array(bytes);
}

const serialValue = fc.bigInt({ min: -(1n << 160n), max: 1n << 160n });

describe("canonicalSerialNumber()", () => {
  it("returns the canonical form or throws a TypeError, and is idempotent", () => {
    fc.assert(
      fc.property(hostileString, (text) => {
        const c = returnsOrThrows(() => canonicalSerialNumber(text), TypeError);
        if (c === undefined) return;
        expect(c).toMatch(canonical);
        expect(canonicalSerialNumber(c)).toBe(c);
      }),
      params(),
    );
  });

  it("writes every spelling of a number the same way", () => {
    fc.assert(
      fc.property(
        serialValue,
        fc.nat({ max: 3 }),
        fc.boolean(),
        fc.constantFrom("", ":", " "),
        (v, zeros, lower, sep) => {
          let hex = "0".repeat(zeros) + (v < 0n ? -v : v).toString(16);
          hex = lower ? hex.toLowerCase() : hex.toUpperCase();
          const spelled = `${v < 0n ? "-" : ""}${hex.match(/.{1,2}/g)!.join(sep)}`;
          expect(canonicalSerialNumber(spelled)).toBe(formatOf(v));
        },
      ),
      params(),
    );
  });
});

describe("serialNumberOfDer()", () => {
  it("reads any INTEGER bytes as the number they encode", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 24 }), (bytes) => {
        expect(serialNumberOfDer(bytes)).toBe(formatOf(bigIntOf(bytes)));
      }),
      params(),
    );
  });

  it("agrees with canonicalSerialNumber on the text OpenSSL prints for the same number", () => {
    fc.assert(
      fc.property(serialValue, (v) => {
        expect(serialNumberOfDer(derOf(v))).toBe(canonicalSerialNumber(formatOf(v)));
      }),
      params(),
    );
  });
});
