// The cache behind online revocation, with fetches the test resolves by hand.
import { describe, expect, it } from "vitest";
import { createOnlineStatusCache, type Fetched } from "../../src/policy/online-status-cache.js";
import { parseCertificate } from "../../src/core/certificate.js";
import { createDecisionCore } from "../../src/decision/decision.js";
import { generateCertificates } from "../support/many-certificates.js";
import { createOcspResponderStub } from "../support/ocsp-responder-stub.js";

interface Deferred {
  resolve(f: Fetched<string>): void;
  promise: Promise<Fetched<string>>;
}

function loads() {
  const started: Deferred[] = [];
  const load = () => {
    let resolve!: (f: Fetched<string>) => void;
    const promise = new Promise<Fetched<string>>((r) => {
      resolve = r;
    });
    started.push({ resolve, promise });
    return promise;
  };
  return { started, load };
}

const ok = (value: string, until = 1000, refreshAt = 500, bytes = 10): Fetched<string> => ({
  kind: "ok",
  value,
  until,
  refreshAt,
  bytes,
});

function cache(options: { maxEntries?: number; maxBytes?: number; maxBackgroundFetches?: number } = {}) {
  const failures: string[] = [];
  const c = createOnlineStatusCache<string, string>({
    maxEntries: options.maxEntries ?? 100,
    maxBytes: options.maxBytes ?? 1_000_000,
    retryAfterMs: 100,
    same: (a, b) => a === b,
    onFailure: (_key, reason) => failures.push(reason),
    ...(options.maxBackgroundFetches !== undefined && { maxBackgroundFetches: options.maxBackgroundFetches }),
  });
  return { c, failures };
}

describe("createOnlineStatusCache()", () => {
  it("shares one fetch between concurrent look-ups, then answers from memory", async () => {
    const { c } = cache();
    const { started, load } = loads();
    const a = c.lookup("k", 0, load);
    const b = c.lookup("k", 0, load);
    await Promise.resolve();
    expect(started).toHaveLength(1);
    started[0]!.resolve(ok("good"));
    expect(await a).toMatchObject({ kind: "ok", value: "good" });
    expect(await b).toMatchObject({ kind: "ok", value: "good" });
    expect(c.lookup("k", 10, load)).toMatchObject({ kind: "ok", value: "good" });
    expect(c.fetches).toBe(1);
  });
  it("refreshes in the background from refreshAt, and changes revision only when the value changes", async () => {
    const { c } = cache();
    const { started, load } = loads();
    const first = c.lookup("k", 0, load);
    await Promise.resolve();
    started[0]!.resolve(ok("good"));
    await first;
    expect(c.lookup("k", 600, load)).toMatchObject({ kind: "ok", value: "good" });
    await Promise.resolve();
    expect(started).toHaveLength(2);
    started[1]!.resolve(ok("good", 2000, 1500));
    await c.settled();
    expect(c.revision).toBe(0);
    c.lookup("k", 1600, load);
    await Promise.resolve();
    started[2]!.resolve(ok("revoked", 3000, 2500));
    await c.settled();
    expect(c.revision).toBe(1);
    expect(c.lookup("k", 1700, load)).toMatchObject({ kind: "ok", value: "revoked" });
  });
  it("remembers a failure until the retry time, then asks again without making a request wait", async () => {
    const { c, failures } = cache();
    const { started, load } = loads();
    const first = c.lookup("k", 0, load);
    await Promise.resolve();
    started[0]!.resolve({ kind: "failed", reason: "timeout", why: "slow" });
    expect(await first).toMatchObject({ kind: "failed", reason: "timeout", retryAt: 100 });
    expect(c.lookup("k", 50, load)).toMatchObject({ kind: "failed" });
    expect(started).toHaveLength(1);
    expect(failures).toEqual(["timeout"]);
    // Past the retry time: asked again in the background, the failure answered meanwhile.
    expect(c.lookup("k", 150, load)).toMatchObject({ kind: "failed", retryAt: 150 });
    await Promise.resolve();
    expect(started).toHaveLength(2);
    started[1]!.resolve(ok("good"));
    await c.settled();
    expect(c.lookup("k", 160, load)).toMatchObject({ kind: "ok", value: "good" });
  });
  it("runs at most maxBackgroundFetches refreshes at once; a request that needs a queued one starts it", async () => {
    const { c } = cache({ maxBackgroundFetches: 1 });
    const { started, load } = loads();
    for (const k of ["a", "b"]) {
      const p = c.lookup(k, 0, load);
      await Promise.resolve();
      started.at(-1)!.resolve(ok(k));
      await p;
    }
    c.lookup("a", 600, load);
    c.lookup("b", 600, load);
    await Promise.resolve();
    expect(started).toHaveLength(3); // a's refresh runs, b's waits
    // Past b's use: the request must wait, so b's refresh starts now.
    const b = c.lookup("b", 1100, load);
    await new Promise((r) => setImmediate(r));
    expect(started).toHaveLength(4);
    started[3]!.resolve(ok("b2", 5000, 4000));
    expect(await b).toMatchObject({ kind: "ok", value: "b2" });
    started[2]!.resolve(ok("a", 5000, 4000));
    await c.settled();
    expect(started).toHaveLength(4);
  });
  it("keeps at most maxEntries entries and maxBytes bytes", async () => {
    const { c } = cache({ maxEntries: 3, maxBytes: 25 });
    for (const k of ["a", "b", "c", "d"]) {
      await c.lookup(k, 0, async () => ok(k, 1000, 500, 10));
    }
    expect([...c.values()]).toEqual(["c", "d"]);
  });
});

describe("createOcspResponderStub()", () => {
  it("answers OCSP that the decision core accepts: good admits, revoked refuses", async () => {
    const many = await generateCertificates(2, "stub");
    const stub = createOcspResponderStub({
      caCertDer: many.ca.der,
      caKeyPem: many.ca.key,
      now: Date.now,
      lifetimeMs: 60_000,
      statusOf: (serial) => (serial.endsWith("02") ? "revoked" : "good"),
    });
    const core = createDecisionCore({
      validateTrust: { ca: [many.ca.cert] },
      validateRevocation: { ocsp: "hard-fail", responderUrl: "http://stub.invalid/", fetch: stub.fetch },
    });
    const peer = (der: Uint8Array) => ({
      certificate: parseCertificate(der),
      authorized: false,
      authorizationError: undefined,
      encrypted: true,
    });
    expect((await core.decide(peer(many.ders[0]!))).kind).toBe("admitted");
    const refused = await core.decide(peer(many.ders[1]!));
    expect(refused.kind === "refused" && refused.reason).toBe("revoked");
    expect(stub.requests).toBe(2);
  });
});
