// Property tests of online revocation's parsers: a damaged OCSP response
// parses or throws a RangeError and is never checked as anything but what
// its signer said; a damaged CRL served from a distribution point never
// admits the certificate it revokes; damaged certificate extensions never
// throw anything but a RangeError.
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCertificate, type Certificate } from "../../src/core/certificate.js";
import { readTlv } from "../../src/core/der.js";
import { createDecisionCore } from "../../src/decision/decision.js";
import { crlDistributionPointsOf } from "../../src/policy/crl-distribution-points.js";
import { encodeDer, ocspCertIdOf, ocspUrlsOf } from "../../src/policy/ocsp-request.js";
import { checkOcspResponse, parseOcspResponse } from "../../src/policy/ocsp-response.js";
import { createOcspPki, type OcspIssued, type OcspPki } from "../support/ocsp-pki.js";
import { attempt, mutatedBytes, params, returnsOrThrows } from "../support/property.js";

let pki: OcspPki;
let revoked: OcspIssued;
let revokedCert: Certificate;
let caCert: Certificate;
let response: Uint8Array;
let crl: Uint8Array;

beforeAll(async () => {
  pki = await createOcspPki();
  revoked = await pki.issue("revoked", { ocspUrl: "http://127.0.0.1:1/", crlUrl: "http://127.0.0.1:1/ca.crl" });
  pki.revoke(revoked);
  crl = await pki.crl();
  revokedCert = parseCertificate(revoked.cert);
  caCert = parseCertificate(pki.cert);
  const responder = await pki.responder("ca");
  try {
    const core = createDecisionCore({
      validateTrust: { ca: [pki.cert] },
      validateRevocation: {
        ocsp: "hard-fail",
        responderUrl: responder.url,
        fetch: async (url, init) => {
          const r = await globalThis.fetch(url, init);
          response = new Uint8Array(await r.arrayBuffer());
          return new Response(response, { status: r.status });
        },
      },
    });
    const peer = { certificate: revokedCert, authorized: false, authorizationError: undefined, encrypted: true };
    const decision = await core.decide(peer);
    expect(decision.kind === "refused" && decision.reason).toBe("revoked");
  } finally {
    await responder.stop();
  }
}, 30_000);

afterAll(async () => {
  await pki?.remove();
});

describe("parseOcspResponse()", () => {
  it("parses damaged DER or throws a RangeError", () => {
    expect(parseOcspResponse(response).basic?.responses[0]?.status).toBe("revoked");
    fc.assert(
      fc.property(fc.oneof(mutatedBytes(response), fc.uint8Array({ maxLength: 300 })), (der) => {
        returnsOrThrows(() => parseOcspResponse(der), RangeError);
      }),
      params(),
    );
  });
});

describe("checkOcspResponse()", () => {
  it("never turns a damaged 'revoked' response into another status, and never throws", () => {
    const options = {
      certId: ocspCertIdOf(revokedCert, caCert),
      issuer: caCert,
      nonce: undefined,
      t: Date.now(),
      clockSkewMs: 0,
    };
    expect(checkOcspResponse(response, options)).toMatchObject({ kind: "status", status: "revoked" });
    fc.assert(
      fc.property(mutatedBytes(response), (der) => {
        const result = attempt(() => checkOcspResponse(der, options));
        expect(result.ok).toBe(true);
        if (result.ok && result.value.kind === "status") expect(result.value.status).toBe("revoked");
      }),
      params(),
    );
  });
});

describe("certificate URLs", () => {
  it("reads damaged extensions or throws a RangeError", () => {
    expect(ocspUrlsOf(revokedCert)).toEqual(["http://127.0.0.1:1/"]);
    fc.assert(
      fc.property(mutatedBytes(revokedCert.der), (der) => {
        const fake = { ...revokedCert, der } as Certificate;
        returnsOrThrows(() => crlDistributionPointsOf(fake), RangeError);
        returnsOrThrows(() => ocspUrlsOf(fake), RangeError);
      }),
      params(),
    );
  });
});

describe("encodeDer()", () => {
  it("encodes what readTlv reads back, at every length", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0x1e }), fc.uint8Array({ maxLength: 70_000 }), (tag, content) => {
        const der = encodeDer(tag, content);
        const tlv = readTlv(der, 0);
        expect(tlv.end).toBe(der.length);
        expect(Buffer.from(der.subarray(tlv.contentStart)).equals(Buffer.from(content))).toBe(true);
      }),
      params(0.25),
    );
  });
});

describe("CRLs from distribution points", () => {
  it("never admits the certificate a damaged CRL revokes", async () => {
    await fc.assert(
      fc.asyncProperty(mutatedBytes(crl), async (damaged) => {
        const core = createDecisionCore({
          validateTrust: { ca: [pki.cert] },
          validateRevocation: {
            crlDistributionPoints: true,
            onError: () => undefined,
            fetch: async () => new Response(damaged, { status: 200 }),
          },
        });
        const peer = { certificate: revokedCert, authorized: false, authorizationError: undefined, encrypted: true };
        const decision = await core.decide(peer);
        expect(decision.kind).toBe("refused");
      }),
      params(0.25),
    );
  });
});
