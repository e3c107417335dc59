// Property tests of CRLs (validateRevocation): a damaged CRL parses or throws
// a RangeError, a CRL set throws a TypeError, and no damage to a CRL that
// revokes a certificate makes that certificate pass the revocation check.
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCertificate, type Certificate } from "../../src/core/certificate.js";
import { createCertificateSet } from "../../src/policy/certificate-set.js";
import { parseCrl } from "../../src/policy/crl.js";
import { createCrlSet } from "../../src/policy/crl-set.js";
import { createRevocationChecker } from "../../src/policy/revocation.js";
import { createOpensslCa, type OpensslCa } from "../support/openssl-ca.js";
import { attempt, hostileString, mutatedBytes, mutatedText, params, returnsOrThrows } from "../support/property.js";

let ca: OpensslCa;
let crlPem: string;
let crlDer: Uint8Array;
let revoked: Certificate;
let caCert: Certificate;
beforeAll(async () => {
  ca = await createOpensslCa();
  const issued = await ca.issue("revoked", "-0x7FFF");
  ca.revoke(issued);
  crlPem = await ca.crl();
  crlDer = new Uint8Array(Buffer.from(crlPem.replace(/-----[^-]+-----|\s/g, ""), "base64"));
  revoked = parseCertificate(issued.cert);
  caCert = parseCertificate(ca.cert);
});
afterAll(async () => {
  await ca?.remove();
});

describe("parseCrl()", () => {
  it("parses damaged DER or throws a RangeError", () => {
    expect(parseCrl(crlDer, "crl").revoked.has("-7FFF")).toBe(true);
    fc.assert(
      fc.property(fc.oneof(mutatedBytes(crlDer), fc.uint8Array({ maxLength: 200 })), (der) => {
        returnsOrThrows(() => parseCrl(der, "crl"), RangeError);
      }),
      params(),
    );
  });
});

describe("createCrlSet()", () => {
  it("returns a set or throws a TypeError for damaged PEM, DER and text", () => {
    fc.assert(
      fc.property(fc.oneof(mutatedText(crlPem), mutatedBytes(crlDer), hostileString), (input) => {
        returnsOrThrows(() => createCrlSet([input]), TypeError);
      }),
      params(),
    );
  });
});

describe("createRevocationChecker()", () => {
  it("never passes the revoked certificate, whatever the damage to its CRL", () => {
    const cas = createCertificateSet([ca.cert]);
    const check = (crl: string | Uint8Array) => {
      const set = attempt(() => createCrlSet([crl]));
      // A CRL that does not load fails at start-up: nothing is admitted.
      if (!set.ok) return "not loaded";
      return createRevocationChecker(set.value, cas, { onError: () => {} }).check([revoked, caCert], Date.now()).kind;
    };
    expect(check(crlDer)).toBe("revoked");
    fc.assert(
      fc.property(fc.oneof(mutatedBytes(crlDer), mutatedText(crlPem)), (crl) => {
        expect(check(crl)).not.toBe("good");
      }),
      params(),
    );
  });
});
