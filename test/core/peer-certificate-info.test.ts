import { X509Certificate } from "node:crypto";
import { beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { createDecisionCore } from "../../src/decision/decision.js";
import { certificateOfPeerInfo, parseCertificate } from "../../src/core/certificate.js";
import { createThumbprintStore } from "../../src/stores/thumbprint-store.js";
import type { PeerCertificate } from "../../src/core/peer-certificate.js";
import { certificateOf, createTestPki, type TestPki } from "../support/harness.js";

// On a new connection certgate reads what Node's TLS layer reports of the
// peer (getPeerCertificate(false)) and builds Node's X509Certificate only
// when a field needs it. Constructions are counted through node:crypto.
const constructed = vi.hoisted(() => ({ count: 0 }));
vi.mock("node:crypto", async (importOriginal) => {
  const original = await importOriginal<typeof import("node:crypto")>();
  class CountedX509Certificate extends original.X509Certificate {
    constructor(...args: ConstructorParameters<typeof original.X509Certificate>) {
      super(...args);
      constructed.count++;
    }
  }
  return { ...original, X509Certificate: CountedX509Certificate };
});

let pki: TestPki;
beforeAll(async () => {
  pki = await createTestPki();
});
beforeEach(() => {
  constructed.count = 0;
});

describe("certificateOfPeerInfo()", () => {
  function infoOf(der: Uint8Array) {
    const x509 = new X509Certificate(der);
    return {
      raw: Buffer.from(der),
      fingerprint: x509.fingerprint,
      fingerprint256: x509.fingerprint256,
      valid_from: x509.validFrom,
      valid_to: x509.validTo,
    };
  }

  it("decides for a thumbprint store without constructing an X509Certificate", async () => {
    const infos = [infoOf(pki.alice.der), infoOf(pki.bob.der)];
    const store = createThumbprintStore(certificateOf(pki.alice).sha256);
    constructed.count = 0;
    const core = createDecisionCore({ store });
    const kinds: string[] = [];
    for (const info of infos) {
      const peer: PeerCertificate = {
        certificate: certificateOfPeerInfo(info),
        authorized: false,
        authorizationError: undefined,
        encrypted: true,
      };
      kinds.push((await core.enforce(peer, "/certgate.example.v1.EchoService/Echo", "gate")).kind);
    }
    expect(kinds).toEqual(["admitted", "refused"]);
    expect(constructed.count).toBe(0);
  });

  it("gives the same fields as parseCertificate(), building Node's parsed form once when first asked", () => {
    const lazy = certificateOfPeerInfo(infoOf(pki.alice.der));
    const full = parseCertificate(pki.alice.der);
    constructed.count = 0;
    expect(lazy.sha1).toBe(full.sha1);
    expect(lazy.sha256).toBe(full.sha256);
    expect(lazy.notBefore.getTime()).toBe(full.notBefore.getTime());
    expect(lazy.notAfter.getTime()).toBe(full.notAfter.getTime());
    expect(Buffer.from(lazy.der).equals(Buffer.from(full.der))).toBe(true);
    expect(constructed.count).toBe(0);
    expect(lazy.subject).toBe(full.subject);
    expect(lazy.issuer).toBe(full.issuer);
    expect(lazy.serialNumber).toBe(full.serialNumber);
    expect(lazy.subjectAltNames).toEqual(full.subjectAltNames);
    expect(lazy.isCA).toBe(full.isCA);
    expect(lazy.x509.fingerprint256).toBe(full.x509.fingerprint256);
    expect(constructed.count).toBe(1);
  });

  it("refuses peer information without DER, and gives an invalid date for an unreadable validity", () => {
    expect(() => certificateOfPeerInfo({ ...infoOf(pki.alice.der), raw: new Uint8Array(0) })).toThrow(TypeError);
    const broken = certificateOfPeerInfo({ ...infoOf(pki.alice.der), valid_to: "junk" });
    expect(Number.isNaN(broken.notAfter.getTime())).toBe(true);
  });
});
