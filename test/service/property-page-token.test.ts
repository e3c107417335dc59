// Property tests of the store service's page tokens: a client sends any
// text; only a token the service made reads back, anything else is
// InvalidArgument, and a token never names an id that could not be stored.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { decodePageToken, encodePageToken, isValidEntryId } from "../../src/service/page-token.js";
import { hostileString, mutatedText, params } from "../support/property.js";

const id = fc
  .tuple(
    fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,40}$/),
    fc.option(fc.integer({ min: 2, max: 999_999 }), { nil: undefined }),
  )
  .map(([base, n]) => (n === undefined ? base : `${base}#${n}`))
  .filter(isValidEntryId);

function decode(token: string): { ok: true; after: string } | { ok: false } {
  try {
    return { ok: true, after: decodePageToken(token) };
  } catch (error) {
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.InvalidArgument);
    return { ok: false };
  }
}

describe("decodePageToken()", () => {
  it("reads back every token encodePageToken made", () => {
    fc.assert(
      fc.property(id, (after) => {
        expect(decode(encodePageToken(after))).toEqual({ ok: true, after });
      }),
      params(),
    );
  });

  it("refuses anything else with InvalidArgument, and never yields an invalid id", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          hostileString,
          id.chain((after) => mutatedText(encodePageToken(after))),
        ),
        (token) => {
          const result = decode(token);
          if (result.ok) {
            expect(isValidEntryId(result.after)).toBe(true);
            expect(encodePageToken(result.after)).toBe(token);
          }
        },
      ),
      params(),
    );
  });
});
