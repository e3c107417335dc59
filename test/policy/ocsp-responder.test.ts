// OCSP against a real responder: `openssl ocsp` on loopback, answering for
// a CA that issues with `openssl ca`; the decision core in process.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCertificate } from "../../src/core/certificate.js";
import type { PeerCertificate } from "../../src/core/peer-certificate.js";
import type { ClientCertOptions } from "../../src/decision/decision.js";
import type { RevocationOptions } from "../../src/policy/policy-options.js";
import { outcomeOf, peerOf, revocationCore } from "../support/decisions.js";
import { waitFor } from "../support/harness.js";
import { freePort } from "../support/free-port.js";
import { createOcspPki, type OcspIssued, type OcspPki, type OcspResponder } from "../support/ocsp-pki.js";

let pki: OcspPki;
let responder: OcspResponder;
let ocspUrl: string;
let good: OcspIssued;
let revoked: OcspIssued;
let unknown: OcspIssued;
let late: OcspIssued;
let port: number;

beforeAll(async () => {
  pki = await createOcspPki();
  port = await freePort();
  ocspUrl = `http://127.0.0.1:${port}/`;
  good = await pki.issue("good", { ocspUrl });
  revoked = await pki.issue("revoked", { ocspUrl });
  pki.revoke(revoked);
  unknown = await pki.issue("unknown", { ocspUrl, recorded: false });
  late = await pki.issue("late-revoked", { ocspUrl });
  responder = await pki.responder("ca", { port });
}, 30_000);

afterAll(async () => {
  await responder?.stop();
  await pki?.remove();
});

function core(revocation: Omit<RevocationOptions, "crls">, extra: Partial<ClientCertOptions> = {}) {
  return revocationCore(pki.cert, revocation, extra);
}

describe("validateRevocation.ocsp against openssl ocsp", () => {
  it("admits a good certificate under hard-fail", async () => {
    const { core: c, errors } = core({ ocsp: "hard-fail" });
    expect(outcomeOf(await c.decide(peerOf(good))), errors.join("; ")).toBe("admitted");
  });
  it("refuses a revoked certificate with revoked, under soft-fail too", async () => {
    expect(outcomeOf(await core({ ocsp: "hard-fail" }).core.decide(peerOf(revoked)))).toBe("revoked");
    expect(outcomeOf(await core({ ocsp: "soft-fail" }).core.decide(peerOf(revoked)))).toBe("revoked");
  });
  it("refuses an unknown certificate under hard-fail, admits it under soft-fail", async () => {
    expect(outcomeOf(await core({ ocsp: "hard-fail" }).core.decide(peerOf(unknown)))).toBe("ocsp_unavailable");
    expect(outcomeOf(await core({ ocsp: "soft-fail" }).core.decide(peerOf(unknown)))).toBe("admitted");
  });
  it("accepts a response signed by a delegated responder certificate", async () => {
    const delegated = await pki.responder("delegated");
    try {
      const { core: c, errors } = core({ ocsp: "hard-fail", responderUrl: delegated.url });
      expect(outcomeOf(await c.decide(peerOf(good))), errors.join("; ")).toBe("admitted");
      expect(outcomeOf(await c.decide(peerOf(revoked)))).toBe("revoked");
      expect(errors).toEqual([]);
    } finally {
      await delegated.stop();
    }
  });
  it("refuses a response signed by an unrelated key under hard-fail", async () => {
    const unrelated = await pki.responder("unrelated");
    try {
      const { core: c, reasons } = core({ ocsp: "hard-fail", responderUrl: unrelated.url });
      expect(outcomeOf(await c.decide(peerOf(good)))).toBe("ocsp_unavailable");
      expect(reasons()).toEqual(["bad_signature"]);
      // Nor can a forged "revoked" refuse a good certificate under soft-fail... it is ignored.
      const soft = core({ ocsp: "soft-fail", responderUrl: unrelated.url });
      expect(outcomeOf(await soft.core.decide(peerOf(good)))).toBe("admitted");
      expect(soft.reasons()).toEqual(["bad_signature"]);
    } finally {
      await unrelated.stop();
    }
  });
  it("refuses a response signed by a client certificate of the same CA (no OCSPSigning)", async () => {
    const impostor = await pki.responder("client");
    try {
      const { core: c, reasons } = core({ ocsp: "hard-fail", responderUrl: impostor.url });
      expect(outcomeOf(await c.decide(peerOf(good)))).toBe("ocsp_unavailable");
      expect(reasons()).toEqual(["bad_signature"]);
    } finally {
      await impostor.stop();
    }
  });
  it("refuses under hard-fail and admits under soft-fail when the responder is stopped", async () => {
    const stopped = await pki.responder("ca");
    await stopped.stop();
    const hard = core({ ocsp: "hard-fail", responderUrl: stopped.url });
    expect(outcomeOf(await hard.core.decide(peerOf(good)))).toBe("ocsp_unavailable");
    expect(hard.reasons()).toEqual(["unreachable"]);
    const soft = core({ ocsp: "soft-fail", responderUrl: stopped.url });
    expect(outcomeOf(await soft.core.decide(peerOf(good)))).toBe("admitted");
  });
});

describe("validateRevocation.ocsp status cache", () => {
  function counting() {
    const urls: string[] = [];
    const fetch = (url: string, init: RequestInit) => {
      urls.push(url);
      return globalThis.fetch(url, init);
    };
    return { urls, fetch };
  }
  it("asks once for concurrent requests and never again on new connections of a known certificate", async () => {
    const { urls, fetch } = counting();
    const { core: c, errors } = core({ ocsp: "hard-fail", fetch });
    const cert = parseCertificate(good.cert);
    const same = (): PeerCertificate => ({
      certificate: cert,
      authorized: false,
      authorizationError: undefined,
      encrypted: true,
    });
    const first = await Promise.all([c.decide(same()), c.decide(same()), c.decide(same())]);
    expect(first.map(outcomeOf), errors.join("; ")).toEqual(["admitted", "admitted", "admitted"]);
    expect(urls).toEqual([ocspUrl]);
    const warm = c.decide(same());
    expect(warm instanceof Promise).toBe(false);
    // The same certificate parsed again (another connection): a map look-up, no fetch.
    expect(outcomeOf(await c.decide(peerOf(good)))).toBe("admitted");
    expect(urls).toHaveLength(1);
  });
  it("refreshes in the background ahead of nextUpdate, and refuses once the refresh says revoked", async () => {
    const { urls, fetch } = counting();
    let now = Date.now();
    const { core: c } = core({ ocsp: "hard-fail", fetch, refreshBeforeMs: 60_000 }, { clock: () => now });
    expect(outcomeOf(await c.decide(peerOf(late)))).toBe("admitted");
    expect(urls).toHaveLength(1);
    // openssl ocsp reads its index at start: the CA revokes, the responder restarts.
    pki.revoke(late);
    await responder.stop();
    responder = await pki.responder("ca", { port });
    // Within the response's life (10 minutes) and past its refresh time.
    now += 9.5 * 60_000;
    const during = c.decide(peerOf(late));
    expect(during instanceof Promise).toBe(false);
    expect(outcomeOf(await during)).toBe("admitted");
    await waitFor(async () => outcomeOf(await c.decide(peerOf(late))) === "revoked", "the refreshed status");
    expect(urls).toHaveLength(2);
  });
});
