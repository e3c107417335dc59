import { X509Certificate, createHash } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { createAddressMatcher, parseCidr } from "../src/proxy/cidr.js";
import {
  readForwardedCertificate,
  type ForwardingFormat,
  type ReadForwardedOptions,
} from "../src/proxy/forwarding-formats.js";
import { parseXfcc } from "../src/proxy/xfcc.js";
import { createDevCa, issueDevCertificate, type IssuedCertificate } from "../src/dev-certificates.js";

let ca: IssuedCertificate;
let alice: IssuedCertificate;
let proxy: IssuedCertificate;

// Thumbprints as Node computes them, so expectations do not come from the
// code under test.
const sha256Of = (c: IssuedCertificate) => new X509Certificate(c.cert).fingerprint256.replace(/:/g, "");
const sha1Of = (c: IssuedCertificate) => new X509Certificate(c.cert).fingerprint.replace(/:/g, "");

// How each proxy encodes a certificate.
const urlPem = (pem: string) => encodeURIComponent(pem);
const awsPem = (pem: string) =>
  encodeURIComponent(pem).replace(/%2B/g, "+").replace(/%3D/g, "=").replace(/%2F/g, "/");
const base64Der = (c: IssuedCertificate) => Buffer.from(c.der).toString("base64");
const hashOf = (c: IssuedCertificate) => createHash("sha256").update(c.der).digest("hex");
const xfccElement = (c: IssuedCertificate) =>
  `By=spiffe://cluster.local/ns/default/sa/api;Hash=${hashOf(c)};Cert="${urlPem(c.cert)}";Subject="${c.x509.subject}";URI=spiffe://cluster.local/ns/default/sa/client`;

beforeAll(async () => {
  ca = await createDevCa({ commonName: "certgate proxy unit CA" });
  alice = await issueDevCertificate(ca, { commonName: "alice", usages: ["client"] });
  proxy = await issueDevCertificate(ca, { commonName: "edge proxy", usages: ["client"] });
});

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
    ["a stray quote", "Subject=CN=x\"y", /stray quote/],
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

describe("readForwardedCertificate()", () => {
  const trustNone = { maxXfccElements: 16, isTrustedProxy: () => false };
  const trustProxy = {
    maxXfccElements: 16,
    isTrustedProxy: (t: { sha1?: string; sha256: string }) => t.sha256 === sha256Of(proxy) || t.sha1 === sha1Of(proxy),
  };
  const read = (format: ForwardingFormat, value: string, options: ReadForwardedOptions = trustNone) =>
    readForwardedCertificate(format, value, options);
  const thumbprintOf = (result: ReturnType<typeof read>) =>
    result.kind === "certificate" ? result.certificate.sha256 : result;

  const wellFormed: [ForwardingFormat, string, () => string][] = [
    ["xfcc", "a full element (By, Hash, quoted Cert, Subject, URI)", () => xfccElement(alice)],
    ["xfcc", "an unquoted Cert alone", () => `Cert=${urlPem(alice.cert)}`],
    ["xfcc", "a Chain alone (leaf first)", () => `Chain="${urlPem(alice.cert + ca.cert)}"`],
    ["nginx", "$ssl_client_escaped_cert", () => urlPem(alice.cert)],
    ["aws-alb", "the leaf alone", () => awsPem(alice.cert)],
    ["aws-alb", "the chain, leaf first", () => awsPem(`${alice.cert}\n${ca.cert}`)],
    ["azure-app-service", "base64 DER", () => base64Der(alice)],
  ];
  for (const [format, what, value] of wellFormed) {
    it(`admits alice's certificate as ${format}: ${what}`, () => {
      expect(thumbprintOf(read(format, value()))).toBe(sha256Of(alice));
    });
  }

  // Each format, broken the ways a forger or a misconfigured proxy would.
  const malformed: [ForwardingFormat, string, () => string, RegExp][] = [
    ["xfcc", "bad quoting", () => `Cert="${urlPem(alice.cert)}`, /unterminated quote/],
    ["xfcc", "a truncated Cert", () => `Cert=${urlPem(alice.cert.slice(0, 300))}`, /no complete CERTIFICATE block/],
    ["xfcc", "bad URL encoding", () => `Cert=${urlPem(alice.cert)}%ZZ`, /bad URL encoding/],
    ["xfcc", "a Hash that is not Cert's", () => `Hash=${hashOf(proxy)};Cert=${urlPem(alice.cert)}`, /Hash does not match Cert/],
    ["xfcc", "a Hash that is not hex", () => `Hash=xyz;Cert=${urlPem(alice.cert)}`, /not a SHA-256/],
    ["xfcc", "a Chain that does not start with Cert", () => `Cert=${urlPem(alice.cert)};Chain=${urlPem(ca.cert)}`, /Chain does not start with Cert/],
    ["nginx", "truncated", () => urlPem(alice.cert.slice(0, -40)), /no complete CERTIFICATE block/],
    ["nginx", "bad URL encoding", () => urlPem(alice.cert).replace("%0A", "%0"), /bad URL encoding/],
    ["nginx", "broken base64", () => urlPem(alice.cert.replace(/\n[A-Za-z0-9+/]{8}/, "\n!!!!!!!!")), /bad base64/],
    ["nginx", "two certificates", () => urlPem(alice.cert + ca.cert), /more than one certificate/],
    ["nginx", "a private key alongside", () => urlPem(alice.cert + alice.key), /text other than CERTIFICATE blocks/],
    ["nginx", "a block that is not a certificate", () => urlPem(`-----BEGIN CERTIFICATE-----\n${Buffer.from("not a certificate at all").toString("base64")}\n-----END CERTIFICATE-----\n`), /not an X.509 certificate/],
    ["aws-alb", "truncated", () => awsPem(alice.cert.slice(0, 200)), /no complete CERTIFICATE block/],
    ["aws-alb", "bad URL encoding", () => `%E0%A4%A${awsPem(alice.cert)}`, /bad URL encoding/],
    ["azure-app-service", "truncated", () => base64Der(alice).slice(0, -5), /bad base64|not an X.509/],
    ["azure-app-service", "base64 cut at a quad boundary", () => base64Der(alice).slice(0, 200), /not an X.509 certificate/],
    ["azure-app-service", "PEM instead of base64 DER", () => alice.cert, /bad base64/],
    ["azure-app-service", "URL-safe base64", () => base64Der(alice).replace(/\+/g, "-").replace(/\//g, "_"), /bad base64/],
  ];
  for (const [format, what, value, message] of malformed) {
    it(`refuses ${format} with ${what}`, () => {
      const result = read(format, value());
      expect(result.kind).toBe("invalid");
      expect(result.kind === "invalid" && result.message).toMatch(message);
    });
  }

  for (const format of ["xfcc", "nginx", "aws-alb", "azure-app-service"] as const) {
    it(`refuses an empty ${format} header as no certificate`, () => {
      expect(read(format, "  ")).toEqual({ kind: "none", why: "empty" });
    });
  }

  it("refuses an XFCC element with only a Hash as no certificate", () => {
    expect(read("xfcc", `By=spiffe://a;Hash=${hashOf(alice)};Subject="CN=alice"`)).toEqual({ kind: "none", why: "hash_only" });
  });
  it("refuses an XFCC element with neither Cert nor Hash as no certificate", () => {
    expect(read("xfcc", "By=spiffe://a;URI=spiffe://b")).toEqual({ kind: "none", why: "no_cert" });
  });
  it("admits the last element's certificate, not an earlier (forgeable) one", () => {
    const value = `Cert=${urlPem(proxy.cert)},${xfccElement(alice)}`;
    expect(thumbprintOf(read("xfcc", value))).toBe(sha256Of(alice));
  });
  it("refuses to look past the last element when it is not a trusted proxy", () => {
    const value = `${xfccElement(alice)},Cert=${urlPem(proxy.cert)}`;
    expect(thumbprintOf(read("xfcc", value))).toBe(sha256Of(proxy));
  });
  it("admits the element before a trusted proxy hop (by Cert)", () => {
    const value = `${xfccElement(alice)},Cert=${urlPem(proxy.cert)}`;
    expect(thumbprintOf(read("xfcc", value, trustProxy))).toBe(sha256Of(alice));
  });
  it("admits the element before a trusted proxy hop (by Hash alone)", () => {
    const value = `${xfccElement(alice)},Hash=${hashOf(proxy)}`;
    expect(thumbprintOf(read("xfcc", value, trustProxy))).toBe(sha256Of(alice));
  });
  it("refuses a header in which every element is a trusted proxy", () => {
    const value = `Cert=${urlPem(proxy.cert)},Hash=${hashOf(proxy)}`;
    expect(read("xfcc", value, trustProxy)).toEqual({ kind: "none", why: "only_proxies" });
  });
  it("refuses a whole header when an element the walk never reaches is malformed", () => {
    const value = `Subject="broken,${xfccElement(alice)}`;
    expect(read("xfcc", value).kind).toBe("invalid");
  });
  it("refuses more elements than maxXfccElements", () => {
    const value = Array.from({ length: 3 }, () => xfccElement(alice)).join(",");
    expect(read("xfcc", value, { ...trustNone, maxXfccElements: 2 }).kind).toBe("invalid");
    expect(thumbprintOf(read("xfcc", value, { ...trustNone, maxXfccElements: 3 }))).toBe(sha256Of(alice));
  });
});
