// Property tests of thumbprint parsing: whatever people paste becomes 40 or
// 64 upper-case hex digits or a TypeError, and a pinned thumbprint store
// admits nothing but the certificates it names.
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { parseCertificate, type Certificate } from "../../src/core/certificate.js";
import { normalizeThumbprint } from "../../src/core/thumbprint.js";
import { createDevCa, issueDevCertificate } from "../../src/dev-certificates.js";
import { createThumbprintStore } from "../../src/stores/thumbprint-store.js";
import { hostileString, params, returnsOrThrows } from "../support/property.js";

const hexDigits = (n: number) =>
  fc.array(fc.constantFrom(..."0123456789abcdefABCDEF"), { minLength: n, maxLength: n }).map((a) => a.join(""));
const noise = fc.constantFrom("", " ", ":", "\u200e", "\u200f", "\ufeff", "  ");

let alice: Certificate;
beforeAll(async () => {
  const ca = await createDevCa({ commonName: "property CA" });
  alice = parseCertificate((await issueDevCertificate(ca, { commonName: "alice", usages: ["client"] })).cert);
});

describe("normalizeThumbprint()", () => {
  it("returns 40 or 64 upper-case hex digits, or throws a TypeError", () => {
    fc.assert(
      fc.property(fc.oneof(hostileString, hexDigits(40), hexDigits(64)), (text) => {
        const normalized = returnsOrThrows(() => normalizeThumbprint(text), TypeError);
        if (normalized !== undefined) expect(normalized).toMatch(/^(?:[0-9A-F]{40}|[0-9A-F]{64})$/);
      }),
      params(),
    );
  });

  it("reads any pasted spelling of a thumbprint as the same digits", () => {
    fc.assert(
      fc.property(
        fc.oneof(hexDigits(40), hexDigits(64)),
        fc.array(noise, { minLength: 64, maxLength: 64 }),
        (digits, seps) => {
          const pasted = [...digits].map((d, i) => `${seps[i]}${i % 2 ? d.toLowerCase() : d}`).join("");
          expect(normalizeThumbprint(pasted)).toBe(digits.toUpperCase());
        },
      ),
      params(),
    );
  });
});

describe("createThumbprintStore()", () => {
  it("throws a TypeError for garbage, and admits alice only when her thumbprint is pinned", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(hostileString, hexDigits(40), hexDigits(64)), { minLength: 1, maxLength: 3 }),
        async (list) => {
          const store = returnsOrThrows(() => createThumbprintStore(list), TypeError);
          if (store === undefined) return;
          const verdict = await store.lookup(alice, new AbortController().signal);
          const pinned = list.map((t) => normalizeThumbprint(t));
          expect(verdict.kind).toBe(
            pinned.includes(alice.sha1) || pinned.includes(alice.sha256) ? "admitted" : "refused",
          );
        },
      ),
      params(),
    );
  });
});
