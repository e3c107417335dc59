import { describe, expect, it } from "vitest";
import { parseXfcc } from "../../src/proxy/xfcc.js";

describe("parseXfcc()", () => {
  it("admits Envoy's example, with quoted values holding separators and quotes", () => {
    const parsed = parseXfcc(
      'By=http://frontend.lyft.com;Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688;Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test, \\"Client\\"; x";URI=spiffe://lyft.com/test;DNS=a.example;dns=b.example',
      16,
    );
    expect(parsed).toEqual({
      kind: "parsed",
      elements: [
        {
          by: ["http://frontend.lyft.com"],
          hash: "468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688",
          cert: undefined,
          chain: undefined,
          subject: '/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test, "Client"; x',
          uri: ["spiffe://lyft.com/test"],
          dns: ["a.example", "b.example"],
        },
      ],
    });
  });
  it("admits several elements, keys in any case, spaces around separators", () => {
    const parsed = parseXfcc('By=a;HASH=00 , by=b ; uri="x" ,Cert=abc', 16);
    expect(parsed.kind).toBe("parsed");
    if (parsed.kind !== "parsed") return;
    expect(parsed.elements.map((e) => [e.by, e.hash, e.uri, e.cert])).toEqual([
      [["a"], "00", [], undefined],
      [["b"], undefined, ["x"], undefined],
      [[], undefined, [], "abc"],
    ]);
  });
  const malformed: [string, string, RegExp][] = [
    ["an unterminated quote", 'Hash=00;Subject="CN=x', /unterminated quote/],
    ["a quote that ends in a backslash", 'Subject="CN=x\\', /unterminated quote/],
    ["text after a closing quote", 'Subject="CN=x"y;Hash=00', /text after a closing quote/],
    ["a stray quote", 'Subject=CN=x"y', /stray quote/],
    ["a pair without =", "Hash=00;Cert", /pair without =/],
    ["an empty element", "Hash=00,,Hash=11", /empty/],
    ["a trailing semicolon", "Hash=00;", /empty/],
    ["a trailing comma", "Hash=00,", /empty/],
    ["a bad key", "Ha sh=00", /bad key/],
    ["an empty key", "=00", /bad key/],
    ["a duplicate Cert", "Cert=a;cert=b", /duplicate cert/],
    ["a duplicate Hash", "Hash=a;Hash=b", /duplicate hash/],
    ["too many elements", Array.from({ length: 5 }, () => "Hash=00").join(","), /more than 4 elements/],
  ];
  for (const [what, value, message] of malformed) {
    it(`refuses ${what}`, () => {
      const parsed = parseXfcc(value, 4);
      expect(parsed.kind).toBe("malformed");
      expect(parsed.kind === "malformed" && parsed.message).toMatch(message);
    });
  }
});
