import { describe, expect, it } from "vitest";
import { createAddressMatcher, parseCidr } from "../../src/proxy/cidr.js";

describe("parseCidr()", () => {
  const valid: [string, number][] = [
    ["10.0.0.0/8", 104],
    ["127.0.0.1/32", 128],
    ["127.0.0.1", 128],
    ["::1/128", 128],
    ["::1", 128],
    ["fd00::/8", 8],
    ["2001:db8::/32", 32],
    ["::ffff:127.0.0.1/128", 128],
    ["::ffff:10.0.0.0/104", 104],
  ];
  for (const [text, prefix] of valid) {
    it(`admits ${text}`, () => {
      expect(parseCidr(text).prefix).toBe(prefix);
    });
  }
  const invalid: [string, RegExp][] = [
    ["10.0.0.0/33", /prefix length must be 0 to 32/],
    ["::/129", /prefix length must be 0 to 128/],
    ["10.0.0/8", /not an IPv4 or IPv6 address/],
    ["010.0.0.0/8", /not an IPv4 or IPv6 address/],
    ["proxy.internal/32", /not an IPv4 or IPv6 address/],
    ["", /not an IPv4 or IPv6 address/],
    ["10.0.0.0/", /prefix length/],
    ["10.0.0.0/8/8", /prefix length/],
    ["10.0.0.0/-1", /prefix length/],
    ["10.0.0.1/8", /host bits are set/],
    ["fd00::1/8", /host bits are set/],
    ["0.0.0.0/0", /matches every address/],
    ["::/0", /matches every address/],
    ["fe80::1%eth0/128", /zone/],
  ];
  for (const [text, message] of invalid) {
    it(`refuses ${JSON.stringify(text)}, naming it`, () => {
      expect(() => parseCidr(text)).toThrow(TypeError);
      expect(() => parseCidr(text)).toThrow(message);
      expect(() => parseCidr(text)).toThrow(JSON.stringify(text));
    });
  }
});

describe("createAddressMatcher()", () => {
  const cases: [string, string, boolean][] = [
    ["127.0.0.1/32", "127.0.0.1", true],
    ["127.0.0.1/32", "127.0.0.2", false],
    ["127.0.0.1/32", "::ffff:127.0.0.1", true],
    ["127.0.0.1/32", "::ffff:127.0.0.2", false],
    ["::ffff:127.0.0.1/128", "127.0.0.1", true],
    ["::ffff:127.0.0.1/128", "127.0.0.2", false],
    ["10.0.0.0/8", "10.255.1.2", true],
    ["10.0.0.0/8", "11.0.0.1", false],
    ["10.0.0.0/8", "::ffff:10.1.2.3", true],
    ["10.0.0.0/8", "::a00:1", false], // IPv4-compatible, not IPv4-mapped
    ["172.16.0.0/12", "172.31.255.255", true],
    ["172.16.0.0/12", "172.32.0.0", false],
    ["::1/128", "::1", true],
    ["::1/128", "::2", false],
    ["::1/128", "127.0.0.1", false],
    ["2001:db8::/33", "2001:db8:7fff:ffff::1", true],
    ["2001:db8::/33", "2001:db8:8000::", false],
    ["fe80::/10", "fe80::1%eth0", true],
    ["fe80::/10", "fec0::1", false],
    ["fd00::/8", "fd12:3456::1", true],
    ["fd00::/8", "fe00::1", false],
  ];
  for (const [range, address, inside] of cases) {
    it(`${inside ? "admits" : "refuses"} ${address} for ${range}`, () => {
      expect(createAddressMatcher([range])(address)).toBe(inside);
    });
  }
  it("refuses what is not an address", () => {
    const match = createAddressMatcher(["127.0.0.1/32"]);
    expect(match(undefined)).toBe(false);
    expect(match("localhost")).toBe(false);
    expect(match("")).toBe(false);
  });
  it("admits an address in any of several ranges", () => {
    const match = createAddressMatcher(["10.0.0.0/8", "::1"]);
    expect([match("10.1.1.1"), match("::1"), match("192.168.0.1")]).toEqual([true, true, false]);
  });
});
