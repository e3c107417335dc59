// Property tests of distinguished names as people write them (identities'
// subject and issuerSubject): any text parses or throws a TypeError, and a
// name written by formatDistinguishedName reads back as the same name.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { distinguishedNamesEqual, type DistinguishedName } from "../../src/policy/distinguished-name.js";
import { formatDistinguishedName, parseDistinguishedName } from "../../src/policy/distinguished-name-text.js";
import { hostileString, params, returnsOrThrows } from "../support/property.js";

const attributeType = fc.constantFrom(
  "2.5.4.3",
  "2.5.4.10",
  "2.5.4.11",
  "2.5.4.6",
  "2.5.4.7",
  "2.5.4.8",
  "0.9.2342.19200300.100.1.25",
  "1.2.3.4",
);
// Values in the hex form (`#` and DER) stand for non-string values.
const value = fc
  .oneof(
    hostileString,
    fc.string({ minLength: 1, maxLength: 30 }),
    fc.constantFrom(" ", "  ", "#f", "#ab", "\\", " #x "),
  )
  .filter((v) => v.length > 0 && !/^#(?:[0-9a-f]{2})+$/.test(v));
const name: fc.Arbitrary<DistinguishedName> = fc.array(
  fc.array(fc.record({ type: attributeType, value }), { minLength: 1, maxLength: 3 }),
  { minLength: 1, maxLength: 5 },
);

describe("parseDistinguishedName()", () => {
  it.each([
    [[[{ type: "2.5.4.3", value: " " }]], "CN=\\ "],
    [[[{ type: "2.5.4.3", value: "#f" }]], "CN=\\#f"],
    [[[{ type: "2.5.4.3", value: "a  " }]], "CN=a \\ "],
  ])("reads back %j, written %s (found by the round trip below)", (dn, text) => {
    expect(formatDistinguishedName(dn)).toBe(text);
    expect(parseDistinguishedName(text)).toEqual(dn);
  });

  it("returns a name or throws a TypeError for any text", () => {
    fc.assert(
      fc.property(hostileString, (text) => {
        returnsOrThrows(() => parseDistinguishedName(text), TypeError);
      }),
      params(),
    );
  });

  it("reads what formatDistinguishedName wrote back as the same name", () => {
    fc.assert(
      fc.property(name, (dn) => {
        const text = formatDistinguishedName(dn);
        const parsed = parseDistinguishedName(text);
        // formatDistinguishedName writes the most specific RDN first.
        expect(distinguishedNamesEqual(parsed, [...dn].reverse())).toBe(true);
        expect(parsed.flat().map((a) => a.value)).toEqual(
          [...dn]
            .reverse()
            .flat()
            .map((a) => a.value),
        );
      }),
      params(),
    );
  });
});
