// Property tests of the forwarding formats (Envoy's XFCC, nginx, AWS ALB,
// Azure App Service): a header value never throws, garbage never reads as a
// certificate, and damage never turns one certificate into another.
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { parseCertificate, type Certificate } from "../../src/core/certificate.js";
import { createDevCa, issueDevCertificate, type IssuedCertificate } from "../../src/dev-certificates.js";
import {
  forwardingFormats,
  readForwardedCertificate,
  type ForwardingFormat,
} from "../../src/proxy/forwarding-formats.js";
import { parseXfcc } from "../../src/proxy/xfcc.js";
import { createThumbprintStore } from "../../src/stores/thumbprint-store.js";
import { hostileString, mutatedText, params } from "../support/property.js";

let alice: IssuedCertificate;
let aliceCert: Certificate;
let proxy: Certificate;
let valid: Record<ForwardingFormat, string>;
const noProxies = { maxXfccElements: 16, isTrustedProxy: () => false };

beforeAll(async () => {
  const ca = await createDevCa({ commonName: "property CA" });
  alice = await issueDevCertificate(ca, { commonName: "alice", usages: ["client"] });
  aliceCert = parseCertificate(alice.cert);
  proxy = parseCertificate((await issueDevCertificate(ca, { commonName: "proxy", usages: ["client"] })).cert);
  const escaped = encodeURIComponent(alice.cert);
  valid = {
    xfcc: `By=spiffe://example.org/proxy;Hash=${aliceCert.sha256.toLowerCase()};Cert="${escaped}";Subject="CN=alice";URI=;DNS=alice.example.org`,
    nginx: escaped,
    "aws-alb": escaped,
    "azure-app-service": Buffer.from(alice.der).toString("base64"),
    "der-base64": Buffer.from(alice.der).toString("base64"),
  };
});

describe("readForwardedCertificate()", () => {
  it.each(forwardingFormats)("never throws on %s garbage, and garbage is never a certificate", (format) => {
    fc.assert(
      fc.property(hostileString, (value) => {
        const result = readForwardedCertificate(format, value, noProxies);
        expect(["none", "invalid"]).toContain(result.kind);
      }),
      params(),
    );
  });

  it.each(forwardingFormats)(
    "admits a damaged %s header only when it still carries alice's exact certificate",
    async (format) => {
      const store = createThumbprintStore(aliceCert.sha256);
      expect(readForwardedCertificate(format, valid[format], noProxies)).toMatchObject({
        kind: "certificate",
        certificate: { sha256: aliceCert.sha256 },
      });
      await fc.assert(
        fc.asyncProperty(mutatedText(valid[format]), async (value) => {
          const result = readForwardedCertificate(format, value, noProxies);
          if (result.kind !== "certificate") return;
          // A changed byte inside the base64 can still parse (a certificate
          // with a broken signature): it is then another certificate, which
          // the store refuses.
          const verdict = await store.lookup(result.certificate, new AbortController().signal);
          const same = Buffer.from(result.certificate.der).equals(Buffer.from(alice.der));
          expect(verdict.kind).toBe(same ? "admitted" : "refused");
        }),
        params(),
      );
    },
  );

  it("never takes the client's certificate from an element a trusted proxy did not add", () => {
    // The nearest element names the proxy; whatever a client put before it is
    // the client's own claim, read only as the client's certificate.
    const proxyElement = `Hash=${proxy.sha256}`;
    fc.assert(
      fc.property(hostileString, (spoofed) => {
        const result = readForwardedCertificate("xfcc", `${spoofed},${proxyElement}`, {
          maxXfccElements: 16,
          isTrustedProxy: (t) => t.sha256 === proxy.sha256,
        });
        expect(["none", "invalid"]).toContain(result.kind);
      }),
      params(),
    );
  });
});

describe("parseXfcc()", () => {
  const quote = (v: string) => `"${v.replace(/[\\"]/g, "\\$&")}"`;
  it("reads quoted values back exactly, whatever they hold", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            by: fc.array(hostileString, { maxLength: 2 }),
            subject: hostileString,
            dns: fc.array(hostileString, { maxLength: 2 }),
          }),
          {
            minLength: 1,
            maxLength: 4,
          },
        ),
        (elements) => {
          const header = elements
            .map((e) =>
              [
                ...e.by.map((b) => `By=${quote(b)}`),
                `Subject=${quote(e.subject)}`,
                ...e.dns.map((d) => `DNS=${quote(d)}`),
              ].join(";"),
            )
            .join(",");
          const parsed = parseXfcc(header, 16);
          expect(parsed.kind).toBe("parsed");
          if (parsed.kind !== "parsed") return;
          expect(parsed.elements.map((e) => ({ by: e.by, subject: e.subject, dns: e.dns }))).toEqual(elements);
        },
      ),
      params(),
    );
  });

  it("never throws, and never returns more elements than allowed", () => {
    fc.assert(
      fc.property(hostileString, fc.integer({ min: 1, max: 4 }), (value, max) => {
        const parsed = parseXfcc(value, max);
        if (parsed.kind === "parsed") expect(parsed.elements.length).toBeLessThanOrEqual(max);
      }),
      params(),
    );
  });
});
