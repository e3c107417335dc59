// CRLs fetched from the certificates' distribution points, served over HTTP
// by the test: verified with the issuer, cached until nextUpdate, refreshed
// ahead of it, and bounded.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCertificate } from "../../src/core/certificate.js";
import type { ClientCertOptions } from "../../src/decision/decision.js";
import { crlDistributionPointsOf } from "../../src/policy/crl-distribution-points.js";
import type { RevocationOptions } from "../../src/policy/policy-options.js";
import { outcomeOf, peerOf, revocationCore } from "../support/decisions.js";
import { waitFor } from "../support/harness.js";
import { createOcspPki, type OcspIssued, type OcspPki } from "../support/ocsp-pki.js";
import { startRevocationStub, type RevocationStub } from "../support/revocation-stub.js";

let pki: OcspPki;
let crlServer: RevocationStub;
let crlUrl: string;
let good: OcspIssued;
let revoked: OcspIssued;
let victim: OcspIssued;
let warmVictim: OcspIssued;
let others: OcspIssued[];
let firstCrl: Uint8Array;

beforeAll(async () => {
  pki = await createOcspPki();
  crlServer = await startRevocationStub({ kind: "status", status: 404 });
  crlUrl = `${crlServer.url}ca.crl`;
  good = await pki.issue("good", { crlUrl });
  revoked = await pki.issue("revoked", { crlUrl });
  victim = await pki.issue("victim", { crlUrl });
  warmVictim = await pki.issue("warm-victim", { crlUrl });
  others = await Promise.all(["a", "b", "c"].map((n) => pki.issue(n, { crlUrl })));
  pki.revoke(revoked);
  firstCrl = await pki.crl(1);
  crlServer.mode = { kind: "bytes", bytes: firstCrl };
}, 30_000);

afterAll(async () => {
  await crlServer?.close();
  await pki?.remove();
});

function core(revocation: Omit<RevocationOptions, "crls">, extra: Partial<ClientCertOptions> = {}) {
  return revocationCore(pki.cert, { crlDistributionPoints: true, ...revocation }, extra);
}

describe("crlDistributionPointsOf()", () => {
  it("reads the http URL of a certificate's distribution point", () => {
    expect(crlDistributionPointsOf(parseCertificate(good.cert))).toEqual([crlUrl]);
  });
  it("finds none in a certificate without the extension", () => {
    expect(crlDistributionPointsOf(parseCertificate(pki.cert))).toEqual([]);
  });
});

describe("validateRevocation.crlDistributionPoints", () => {
  it("admits a certificate its issuer's CRL does not list, refuses one it lists", async () => {
    crlServer.mode = { kind: "bytes", bytes: firstCrl };
    const { core: c, errors } = core({});
    expect(outcomeOf(await c.decide(peerOf(good)))).toBe("admitted");
    expect(outcomeOf(await c.decide(peerOf(revoked)))).toBe("revoked");
    expect(errors).toEqual([]);
  });
  it("fetches one CRL for concurrent requests of several certificates", async () => {
    crlServer.mode = { kind: "bytes", bytes: firstCrl };
    const before = crlServer.requests.length;
    const { core: c } = core({});
    const results = await Promise.all(others.map((o) => c.decide(peerOf(o))));
    expect(results.map(outcomeOf)).toEqual(["admitted", "admitted", "admitted"]);
    expect(crlServer.requests.length - before).toBe(1);
    // Known now: a new connection is decided without a fetch or a promise.
    const warm = c.decide(peerOf(good));
    expect(warm instanceof Promise).toBe(false);
    expect(outcomeOf(await warm)).toBe("admitted");
    expect(crlServer.requests.length - before).toBe(1);
  });
  it("refuses an admitted certificate once a refreshed CRL revokes it", async () => {
    crlServer.mode = { kind: "bytes", bytes: firstCrl };
    let now = Date.now();
    const { core: c } = core({ refreshBeforeMs: 10 * 60_000 }, { clock: () => now });
    expect(outcomeOf(await c.decide(peerOf(victim)))).toBe("admitted");
    pki.revoke(victim);
    crlServer.mode = { kind: "bytes", bytes: await pki.crl(1) };
    // Past the refresh time (10 minutes before nextUpdate), not yet stale.
    now += 55 * 60_000;
    const during = c.decide(peerOf(victim));
    expect(during instanceof Promise).toBe(false);
    expect(outcomeOf(await during)).toBe("admitted");
    await waitFor(async () => outcomeOf(await c.decide(peerOf(victim))) === "revoked", "the refreshed CRL");
  });
  it("refreshes ahead of nextUpdate from a warm connection's call, and refuses its next one once revoked", async () => {
    crlServer.mode = { kind: "bytes", bytes: await pki.crl(1) };
    let now = Date.now();
    const { core: c } = core({ refreshBeforeMs: 10 * 60_000 }, { clock: () => now });
    expect(outcomeOf(await c.decide(peerOf(good)))).toBe("admitted"); // fetches the CRL
    const connection = peerOf(warmVictim);
    expect(outcomeOf(await c.decide(connection))).toBe("admitted"); // decided from the cached CRL
    const fetched = crlServer.requests.length;
    pki.revoke(warmVictim);
    crlServer.mode = { kind: "bytes", bytes: await pki.crl(1) };
    now += 55 * 60_000;
    const during = c.decide(connection);
    expect(during instanceof Promise).toBe(false);
    expect(outcomeOf(await during)).toBe("admitted");
    await waitFor(async () => outcomeOf(await c.decide(connection)) === "revoked", "the refreshed CRL");
    expect(crlServer.requests.length).toBe(fetched + 1);
  });
  it("refuses with crl_unavailable when the CRL cannot be fetched, admits with allowMissing", async () => {
    crlServer.mode = { kind: "status", status: 500 };
    const { core: c, errors } = core({});
    expect(outcomeOf(await c.decide(peerOf(good)))).toBe("crl_unavailable");
    expect(errors.map((e) => (e as { reason?: string }).reason)).toEqual(["http_status"]);
    expect(outcomeOf(await core({ allowMissing: true }).core.decide(peerOf(good)))).toBe("admitted");
  });
  it("does not use a CRL signed by another key with the issuer's name", async () => {
    crlServer.mode = { kind: "bytes", bytes: await pki.crl(1, "unrelated") };
    const { core: c, errors } = core({});
    expect(outcomeOf(await c.decide(peerOf(good)))).toBe("crl_unavailable");
    expect(errors.join()).toMatch(/signature does not verify/);
  });
  it("cuts off a huge CRL at maxResponseBytes", async () => {
    crlServer.mode = { kind: "huge" };
    const { core: c, errors } = core({ maxResponseBytes: 64 * 1024 });
    expect(outcomeOf(await c.decide(peerOf(good)))).toBe("crl_unavailable");
    expect(errors.map((e) => (e as { reason?: string }).reason)).toEqual(["too_large"]);
  });
  it("refuses garbage served as a CRL", async () => {
    crlServer.mode = { kind: "bytes", bytes: new Uint8Array([1, 2, 3, 4]) };
    const { core: c, errors } = core({});
    expect(outcomeOf(await c.decide(peerOf(good)))).toBe("crl_unavailable");
    expect(errors.map((e) => (e as { reason?: string }).reason)).toEqual(["malformed"]);
  });
});
