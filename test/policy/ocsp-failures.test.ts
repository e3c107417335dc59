// OCSP failure modes: a responder that is slow, answers 500, garbage, a
// response for another certificate, a stale response replayed, a huge
// response or a redirect loop. Each is a documented outcome with a reason
// for logs, never a crash, never an admission under hard-fail.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDecisionCore, type ClientCertOptions } from "../../src/decision/decision.js";
import type { RevocationOptions } from "../../src/policy/policy-options.js";
import { outcomeOf, peerOf, revocationCore } from "../support/decisions.js";
import { waitFor } from "../support/harness.js";
import { createTestMetrics, pointValue } from "../support/metrics.js";
import { createOcspPki, type OcspIssued, type OcspPki, type OcspResponder } from "../support/ocsp-pki.js";
import { startRevocationStub, type RevocationStub } from "../support/revocation-stub.js";

let pki: OcspPki;
let responder: OcspResponder;
let stub: RevocationStub;
let good: OcspIssued;
let revoked: OcspIssued;
// A real response about `good`, and when it was made.
let recorded: Uint8Array;
let recordedAt: number;

beforeAll(async () => {
  pki = await createOcspPki();
  good = await pki.issue("good");
  revoked = await pki.issue("revoked");
  pki.revoke(revoked);
  responder = await pki.responder("ca", { minutes: 10 });
  stub = await startRevocationStub({ kind: "status", status: 500 });
  // Record what the real responder answers, through the fetch hook.
  recordedAt = Date.now();
  const problems: string[] = [];
  const c = createDecisionCore({
    validateTrust: { ca: [pki.cert] },
    validateRevocation: {
      ocsp: "hard-fail",
      responderUrl: responder.url,
      onError: (e) => problems.push(e.message),
      fetch: async (url, init) => {
        const response = await globalThis.fetch(url, init);
        recorded = new Uint8Array(await response.arrayBuffer());
        return new Response(recorded, { status: response.status, headers: response.headers });
      },
    },
  });
  expect(outcomeOf(await c.decide(peerOf(good))), problems.join("; ")).toBe("admitted");
}, 30_000);

afterAll(async () => {
  await stub?.close();
  await responder?.stop();
  await pki?.remove();
});

async function decide(
  issued: OcspIssued,
  revocation: Omit<RevocationOptions, "crls">,
  extra: Partial<ClientCertOptions> = {},
): Promise<{ outcome: string; reasons: string[] }> {
  const { core, reasons } = revocationCore(pki.cert, { responderUrl: stub.url, ...revocation }, extra);
  return { outcome: outcomeOf(await core.decide(peerOf(issued))), reasons: reasons() };
}

describe("validateRevocation.ocsp failure modes", () => {
  it("refuses on HTTP 500 under hard-fail, admits under soft-fail", async () => {
    stub.mode = { kind: "status", status: 500 };
    expect(await decide(good, { ocsp: "hard-fail" })).toEqual({
      outcome: "ocsp_unavailable",
      reasons: ["http_status"],
    });
    expect(await decide(good, { ocsp: "soft-fail" })).toEqual({ outcome: "admitted", reasons: ["http_status"] });
  });
  it("refuses garbage", async () => {
    stub.mode = { kind: "bytes", bytes: new Uint8Array([0x30, 0x03, 0x0a, 0x01, 0x00, 0xff, 0xee]) };
    expect(await decide(good, { ocsp: "hard-fail" })).toEqual({ outcome: "ocsp_unavailable", reasons: ["malformed"] });
  });
  it("refuses a responder error status (tryLater)", async () => {
    stub.mode = { kind: "bytes", bytes: new Uint8Array([0x30, 0x03, 0x0a, 0x01, 0x03]) };
    expect(await decide(good, { ocsp: "hard-fail" })).toEqual({
      outcome: "ocsp_unavailable",
      reasons: ["responder_error"],
    });
  });
  it("never takes a good response about another certificate for a revoked one", async () => {
    stub.mode = { kind: "bytes", bytes: recorded };
    expect(await decide(revoked, { ocsp: "hard-fail" })).toEqual({
      outcome: "ocsp_unavailable",
      reasons: ["wrong_certificate"],
    });
  });
  it("refuses a stale response replayed after its nextUpdate", async () => {
    stub.mode = { kind: "bytes", bytes: recorded };
    const later = recordedAt + 20 * 60_000;
    expect(await decide(good, { ocsp: "hard-fail" }, { clock: () => later })).toEqual({
      outcome: "ocsp_unavailable",
      reasons: ["stale"],
    });
  });
  it("refuses a response replayed within its life for its nonce", async () => {
    stub.mode = { kind: "bytes", bytes: recorded };
    expect(await decide(good, { ocsp: "hard-fail" })).toEqual({
      outcome: "ocsp_unavailable",
      reasons: ["nonce_mismatch"],
    });
  });
  it("cuts off a huge response at maxResponseBytes while it streams", async () => {
    stub.mode = { kind: "huge" };
    const before = stub.cutOff;
    expect(await decide(good, { ocsp: "hard-fail", maxResponseBytes: 4096 })).toEqual({
      outcome: "ocsp_unavailable",
      reasons: ["too_large"],
    });
    await waitFor(() => stub.cutOff > before, "the huge response to be cut off");
  });
  it("stops following a redirect loop", async () => {
    stub.mode = { kind: "redirect" };
    const before = stub.requests.length;
    expect(await decide(good, { ocsp: "hard-fail" })).toEqual({
      outcome: "ocsp_unavailable",
      reasons: ["too_many_redirects"],
    });
    expect(stub.requests.length - before).toBe(4); // the request and 3 redirects
  });
  it("does not follow a redirect to LDAP", async () => {
    stub.mode = { kind: "redirect", location: "ldap://127.0.0.1/cn=ca" };
    expect(await decide(good, { ocsp: "hard-fail" })).toEqual({
      outcome: "ocsp_unavailable",
      reasons: ["unsupported_url"],
    });
  });
  it("gives up on a silent responder after fetchTimeoutMs", async () => {
    stub.mode = { kind: "silent" };
    expect(await decide(good, { ocsp: "hard-fail", fetchTimeoutMs: 100 })).toEqual({
      outcome: "ocsp_unavailable",
      reasons: ["timeout"],
    });
    expect(await decide(good, { ocsp: "soft-fail", fetchTimeoutMs: 100 })).toEqual({
      outcome: "admitted",
      reasons: ["timeout"],
    });
  });
  it("bounds a fetch hook that ignores its signal, and survives one that throws", async () => {
    const never = () => new Promise<Response>(() => undefined);
    expect(await decide(good, { ocsp: "hard-fail", fetchTimeoutMs: 100, fetch: never })).toEqual({
      outcome: "ocsp_unavailable",
      reasons: ["timeout"],
    });
    const throws = () => Promise.reject(new Error("proxy refused"));
    expect(await decide(good, { ocsp: "hard-fail", fetch: throws })).toEqual({
      outcome: "ocsp_unavailable",
      reasons: ["unreachable"],
    });
  });
  it("asks again after a failure, once the retry time has passed", async () => {
    stub.mode = { kind: "status", status: 500 };
    let now = Date.now();
    const c = createDecisionCore({
      clock: () => now,
      validateTrust: { ca: [pki.cert] },
      validateRevocation: { ocsp: "hard-fail", responderUrl: stub.url, onError: () => undefined },
    });
    expect(outcomeOf(await c.decide(peerOf(good)))).toBe("ocsp_unavailable");
    const asked = stub.requests.length;
    // Within the retry time: refused at once, the responder is left alone.
    const again = c.decide(peerOf(good));
    expect(again instanceof Promise).toBe(false);
    expect(outcomeOf(await again)).toBe("ocsp_unavailable");
    expect(stub.requests.length).toBe(asked);
    // Past it: asked again in the background, the call answered at once.
    stub.mode = { kind: "bytes", bytes: recorded };
    now += 60_000;
    const meanwhile = c.decide(peerOf(good));
    expect(meanwhile instanceof Promise).toBe(false);
    expect(outcomeOf(await meanwhile)).toBe("ocsp_unavailable");
    await waitFor(() => stub.requests.length === asked + 1, "the retry");
  });
});

describe("validateRevocation metrics", () => {
  it("counts fetches by source and result, and times them", async () => {
    const metrics = createTestMetrics();
    try {
      const c = createDecisionCore({
        meterProvider: metrics.provider,
        validateTrust: { ca: [pki.cert] },
        validateRevocation: { ocsp: "hard-fail", responderUrl: responder.url, onError: () => undefined },
      });
      expect(outcomeOf(await c.decide(peerOf(good)))).toBe("admitted");
      stub.mode = { kind: "status", status: 500 };
      const failing = createDecisionCore({
        meterProvider: metrics.provider,
        validateTrust: { ca: [pki.cert] },
        validateRevocation: { ocsp: "soft-fail", responderUrl: stub.url, onError: () => undefined },
      });
      expect(outcomeOf(await failing.decide(peerOf(good)))).toBe("admitted");
      const points = await metrics.points("certgate.revocation.fetches");
      const of = (result: string) =>
        pointValue(points, { "certgate.revocation.source": "ocsp", "certgate.revocation.result": result });
      expect([of("ok"), of("http_status")]).toEqual([1, 1]);
      const durations = await metrics.points("certgate.revocation.fetch.duration");
      expect(durations.length).toBe(2);
    } finally {
      await metrics.shutdown();
    }
  });
});

describe("validateRevocation options", () => {
  const base = () => ({ validateTrust: { ca: [pki.cert] } });
  it.each([
    [{ ocsp: "on" }, /ocsp must be "off", "soft-fail" or "hard-fail"/],
    [{ ocsp: "off" }, /needs a revocation source/],
    [{}, /needs a revocation source/],
    [{ ocsp: "hard-fail", responderUrl: "ldap://x" }, /responderUrl must be an http or https URL/],
    [{ ocsp: "hard-fail", fetchTimeoutMs: 0 }, /fetchTimeoutMs must be an integer/],
    [{ ocsp: "hard-fail", maxResponseBytes: -1 }, /maxResponseBytes must be an integer/],
    [{ ocsp: "hard-fail", refreshBeforeMs: Number.NaN }, /refreshBeforeMs must be an integer/],
    [{ ocsp: "hard-fail", fetch: "fetch" }, /fetch must be a function/],
    [{ crlDistributionPoints: "yes" }, /crlDistributionPoints must be a boolean/],
    [{ responderUrl: "http://127.0.0.1/" }, /responderUrl is set but ocsp is "off"/],
  ])("refuses %j at start-up", (revocation, message) => {
    expect(() => createDecisionCore({ ...base(), validateRevocation: revocation as RevocationOptions })).toThrow(
      message,
    );
  });
  it("accepts an online source without crls", () => {
    expect(() => createDecisionCore({ ...base(), validateRevocation: { ocsp: "soft-fail" } })).not.toThrow();
    expect(() => createDecisionCore({ ...base(), validateRevocation: { crlDistributionPoints: true } })).not.toThrow();
  });
});
