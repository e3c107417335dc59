import { X509Certificate } from "node:crypto";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { createDecisionCore } from "../../src/decision/decision.js";
import { parseCertificate } from "../../src/core/certificate.js";
import { thumbprintsOfDer } from "../../src/core/thumbprint.js";
import { createThumbprintStore } from "../../src/stores/thumbprint-store.js";
import type { PeerCertificate } from "../../src/core/peer-certificate.js";
import { certificateOf, createTestPki, type TestPki } from "../support/harness.js";

// A decision on a new connection reads what it needs (a thumbprint and the
// validity dates); the names, serial and subject alternative names are read
// from Node's X509Certificate only when someone asks for them.

let pki: TestPki;
beforeAll(async () => {
  pki = await createTestPki();
});
afterEach(() => {
  vi.restoreAllMocks();
});

function spyOnFields() {
  return Object.fromEntries(
    (["subject", "issuer", "serialNumber", "subjectAltName", "ca", "raw"] as const).map((name) => [
      name,
      vi.spyOn(X509Certificate.prototype, name, "get"),
    ]),
  );
}

describe("parseCertificate() fields", () => {
  it("decides on a new connection without copying the DER or reading names, serial or alternative names", async () => {
    const spies = spyOnFields();
    const core = createDecisionCore({ store: createThumbprintStore(certificateOf(pki.alice).sha256) });
    for (const [issued, kind] of [
      [pki.alice, "admitted"],
      [pki.bob, "refused"],
    ] as const) {
      const peer: PeerCertificate = {
        certificate: parseCertificate(new X509Certificate(issued.der)),
        authorized: false,
        authorizationError: undefined,
        encrypted: true,
      };
      const result = await core.enforce(peer, "/certgate.example.v1.EchoService/Echo", "gate");
      expect(result.kind).toBe(kind);
    }
    for (const spy of Object.values(spies)) expect(spy).not.toHaveBeenCalled();
  });

  it("reads a field from Node's parsed form once, when first asked for", () => {
    const spies = spyOnFields();
    const certificate = parseCertificate(new X509Certificate(pki.alice.der));
    expect(certificate.subject).toContain("CN=alice");
    expect(certificate.subject).toContain("CN=alice");
    expect(certificate.serialNumber).toMatch(/^[0-9A-F]+$/);
    expect(spies.subject).toHaveBeenCalledTimes(1);
    expect(spies.serialNumber).toHaveBeenCalledTimes(1);
    expect(spies.subjectAltName).not.toHaveBeenCalled();
    expect(Object.isFrozen(certificate)).toBe(true);
  });
});

describe("parseCertificate() thumbprints", () => {
  it("gives the same thumbprints from Node's fingerprints as from hashing the DER", () => {
    for (const issued of [pki.alice, pki.bob, pki.server]) {
      const fromFingerprints = parseCertificate(new X509Certificate(issued.der));
      const hashed = thumbprintsOfDer(issued.der);
      expect(fromFingerprints.sha256).toBe(hashed.sha256);
      expect(fromFingerprints.sha1).toBe(hashed.sha1);
      const derFirst = parseCertificate(new X509Certificate(issued.der));
      expect(derFirst.der).toEqual(new Uint8Array(issued.der));
      expect([derFirst.sha1, derFirst.sha256]).toEqual([hashed.sha1, hashed.sha256]);
    }
  });
});
