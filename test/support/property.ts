// Shared pieces of the fast-check property tests (test/property-*.test.ts).
import fc from "fast-check";
import { expect } from "vitest";

/**
 * runs is how many cases each property tries: bounded so that a whole
 * property file takes a few seconds in CI. CERTGATE_PROPERTY_RUNS raises it
 * for a longer local search; failures print a seed to replay with.
 */
export const runs = Number(process.env.CERTGATE_PROPERTY_RUNS ?? 200);

/** fast-check parameters for one property, with `runs` cases. */
export function params(scale = 1): fc.Parameters<unknown> {
  return { numRuns: Math.max(1, Math.round(runs * scale)) };
}

/**
 * attempt runs `f` and returns what it returned or threw, so a property can
 * assert that only the documented error type escapes.
 */
export function attempt<T>(f: () => T): { ok: true; value: T } | { ok: false; error: unknown } {
  try {
    return { ok: true, value: f() };
  } catch (error) {
    return { ok: false, error };
  }
}

/** Asserts that `f` returns, or throws an instance of `type` (and nothing else). */
export function returnsOrThrows<T>(f: () => T, type: abstract new (...args: never[]) => Error): T | undefined {
  const result = attempt(f);
  if (result.ok) return result.value;
  expect(result.error).toBeInstanceOf(type);
  return undefined;
}

/**
 * mutatedBytes derives garbage from valid bytes: flipped bits, overwritten,
 * inserted and deleted bytes, truncation, and junk appended; the kinds of
 * damage a hostile peer or a broken file produces. Never the bytes unchanged.
 */
export function mutatedBytes(valid: Uint8Array): fc.Arbitrary<Uint8Array> {
  const n = valid.length;
  const at = fc.nat({ max: Math.max(0, n - 1) });
  const edit = fc.oneof(
    fc.record({ kind: fc.constant("flip" as const), at, bit: fc.nat({ max: 7 }) }),
    fc.record({ kind: fc.constant("set" as const), at, byte: fc.nat({ max: 255 }) }),
    fc.record({ kind: fc.constant("insert" as const), at, bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
    fc.record({ kind: fc.constant("delete" as const), at, count: fc.integer({ min: 1, max: 8 }) }),
    fc.record({ kind: fc.constant("truncate" as const), at }),
    fc.record({ kind: fc.constant("append" as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  );
  return fc
    .array(edit, { minLength: 1, maxLength: 4 })
    .map((edits) => {
      let bytes = Buffer.from(valid);
      for (const e of edits) {
        switch (e.kind) {
          case "flip":
            bytes[e.at % bytes.length] = (bytes[e.at % bytes.length] ?? 0) ^ (1 << e.bit);
            break;
          case "set":
            bytes[e.at % bytes.length] = e.byte;
            break;
          case "insert":
            bytes = Buffer.concat([bytes.subarray(0, e.at), Buffer.from(e.bytes), bytes.subarray(e.at)]);
            break;
          case "delete":
            bytes = Buffer.concat([bytes.subarray(0, e.at), bytes.subarray(e.at + e.count)]);
            break;
          case "truncate":
            bytes = bytes.subarray(0, e.at);
            break;
          case "append":
            bytes = Buffer.concat([bytes, Buffer.from(e.bytes)]);
            break;
        }
        if (bytes.length === 0) bytes = Buffer.from([0x30]);
      }
      return new Uint8Array(bytes);
    })
    .filter((bytes) => !Buffer.from(bytes).equals(Buffer.from(valid)));
}

/** mutatedText is `mutatedBytes` for text: characters flipped, inserted, deleted, cut. */
export function mutatedText(valid: string, alphabet = valid): fc.Arbitrary<string> {
  const ch = fc.constantFrom(...new Set([...alphabet, ",", ";", "=", '"', "\\", "%", " ", "\n", "\u0000", "é"]));
  const at = fc.nat({ max: Math.max(0, valid.length - 1) });
  const edit = fc.oneof(
    fc.record({ kind: fc.constant("set" as const), at, ch }),
    fc.record({ kind: fc.constant("insert" as const), at, ch }),
    fc.record({ kind: fc.constant("delete" as const), at, count: fc.integer({ min: 1, max: 16 }) }),
    fc.record({ kind: fc.constant("truncate" as const), at }),
  );
  return fc
    .array(edit, { minLength: 1, maxLength: 4 })
    .map((edits) => {
      let s = valid;
      for (const e of edits) {
        const i = s.length === 0 ? 0 : e.at % s.length;
        if (e.kind === "set") s = s.slice(0, i) + e.ch + s.slice(i + 1);
        else if (e.kind === "insert") s = s.slice(0, i) + e.ch + s.slice(i);
        else if (e.kind === "delete") s = s.slice(0, i) + s.slice(i + e.count);
        else s = s.slice(0, i);
      }
      return s;
    })
    .filter((s) => s !== valid);
}

/** Any string, weighted toward the characters parsers split on. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.string({ unit: "binary", maxLength: 100 }),
  fc
    .array(
      fc.constantFrom(
        ",",
        ";",
        "=",
        '"',
        "\\",
        "%",
        "/",
        ":",
        ".",
        "+",
        "#",
        " ",
        "\n",
        "-",
        "0",
        "f",
        "A",
        "z",
        "[",
        "]",
        "\u0000",
        "\u202e",
      ),
      { maxLength: 60 },
    )
    .map((a) => a.join("")),
);
