import { X509Certificate, createHash } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import {
  readForwardedCertificate,
  type ForwardingFormat,
  type ReadForwardedOptions,
} from "../../src/proxy/forwarding-formats.js";
import { createDevCa, issueDevCertificate, type IssuedCertificate } from "../../src/dev-certificates.js";

let ca: IssuedCertificate;
let alice: IssuedCertificate;
let proxy: IssuedCertificate;

// Thumbprints as Node computes them, so expectations do not come from the
// code under test.
const sha256Of = (c: IssuedCertificate) => new X509Certificate(c.cert).fingerprint256.replace(/:/g, "");
const sha1Of = (c: IssuedCertificate) => new X509Certificate(c.cert).fingerprint.replace(/:/g, "");

// How each proxy encodes a certificate.
const urlPem = (pem: string) => encodeURIComponent(pem);
const awsPem = (pem: string) => encodeURIComponent(pem).replace(/%2B/g, "+").replace(/%3D/g, "=").replace(/%2F/g, "/");
const base64Der = (c: IssuedCertificate) => Buffer.from(c.der).toString("base64");
const hashOf = (c: IssuedCertificate) => createHash("sha256").update(c.der).digest("hex");
const xfccElement = (c: IssuedCertificate) =>
  `By=spiffe://cluster.local/ns/default/sa/api;Hash=${hashOf(c)};Cert="${urlPem(c.cert)}";Subject="${c.x509.subject}";URI=spiffe://cluster.local/ns/default/sa/client`;

beforeAll(async () => {
  ca = await createDevCa({ commonName: "certgate proxy unit CA" });
  alice = await issueDevCertificate(ca, { commonName: "alice", usages: ["client"] });
  proxy = await issueDevCertificate(ca, { commonName: "edge proxy", usages: ["client"] });
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
    ["der-base64", "base64 DER (Caddy)", () => base64Der(alice)],
    [
      "der-base64",
      "URL-escaped, with the chain after a comma (Traefik)",
      () => encodeURIComponent(`${base64Der(alice)},${Buffer.from(ca.der).toString("base64")}`),
    ],
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
    [
      "xfcc",
      "a Hash that is not Cert's",
      () => `Hash=${hashOf(proxy)};Cert=${urlPem(alice.cert)}`,
      /Hash does not match Cert/,
    ],
    ["xfcc", "a Hash that is not hex", () => `Hash=xyz;Cert=${urlPem(alice.cert)}`, /not a SHA-256/],
    [
      "xfcc",
      "a Chain that does not start with Cert",
      () => `Cert=${urlPem(alice.cert)};Chain=${urlPem(ca.cert)}`,
      /Chain does not start with Cert/,
    ],
    ["nginx", "truncated", () => urlPem(alice.cert.slice(0, -40)), /no complete CERTIFICATE block/],
    ["nginx", "bad URL encoding", () => urlPem(alice.cert).replace("%0A", "%0"), /bad URL encoding/],
    ["nginx", "broken base64", () => urlPem(alice.cert.replace(/\n[A-Za-z0-9+/]{8}/, "\n!!!!!!!!")), /bad base64/],
    ["nginx", "two certificates", () => urlPem(alice.cert + ca.cert), /more than one certificate/],
    ["nginx", "a private key alongside", () => urlPem(alice.cert + alice.key), /text other than CERTIFICATE blocks/],
    [
      "nginx",
      "a block that is not a certificate",
      () =>
        urlPem(
          `-----BEGIN CERTIFICATE-----\n${Buffer.from("not a certificate at all").toString("base64")}\n-----END CERTIFICATE-----\n`,
        ),
      /not an X.509 certificate/,
    ],
    ["aws-alb", "truncated", () => awsPem(alice.cert.slice(0, 200)), /no complete CERTIFICATE block/],
    ["aws-alb", "bad URL encoding", () => `%E0%A4%A${awsPem(alice.cert)}`, /bad URL encoding/],
    ["azure-app-service", "truncated", () => base64Der(alice).slice(0, -5), /bad base64|not an X.509/],
    [
      "azure-app-service",
      "base64 cut at a quad boundary",
      () => base64Der(alice).slice(0, 200),
      /not an X.509 certificate/,
    ],
    ["azure-app-service", "PEM instead of base64 DER", () => alice.cert, /bad base64/],
    ["der-base64", "bad URL escaping", () => `%E0%A4%A${base64Der(alice)}`, /bad URL escaping/],
    ["der-base64", "truncated", () => base64Der(alice).slice(0, -5), /bad base64|not an X.509/],
    [
      "azure-app-service",
      "URL-safe base64",
      () => base64Der(alice).replace(/\+/g, "-").replace(/\//g, "_"),
      /bad base64/,
    ],
  ];
  for (const [format, what, value, message] of malformed) {
    it(`refuses ${format} with ${what}`, () => {
      const result = read(format, value());
      expect(result.kind).toBe("invalid");
      expect(result.kind === "invalid" && result.message).toMatch(message);
    });
  }

  for (const format of ["xfcc", "nginx", "aws-alb", "azure-app-service", "der-base64"] as const) {
    it(`refuses an empty ${format} header as no certificate`, () => {
      expect(read(format, "  ")).toEqual({ kind: "none", why: "empty" });
    });
  }
  it("reads the placeholder Caddy leaves when the client presented no certificate as no certificate", () => {
    expect(read("der-base64", "{http.request.tls.client.certificate_der_base64}")).toEqual({
      kind: "none",
      why: "empty",
    });
  });

  it("refuses an XFCC element with only a Hash as no certificate", () => {
    expect(read("xfcc", `By=spiffe://a;Hash=${hashOf(alice)};Subject="CN=alice"`)).toEqual({
      kind: "none",
      why: "hash_only",
    });
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
