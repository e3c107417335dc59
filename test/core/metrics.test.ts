import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { metrics } from "@opentelemetry/api";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { Code } from "@connectrpc/connect";
import {
  createClientCertGate,
  createClientCertInterceptor,
  createDirectoryStore,
  createMemoryStore,
  type ClientCertOptions,
} from "../../src/index.js";
import { createDecisionCore } from "../../src/core.js";
import { meterOf } from "../../src/core/metrics.js";
import { issueDevCertificate, type IssuedCertificate } from "../../src/dev-certificates.js";
import { createRemoteStore } from "../../src/stores/remote-store.js";
import { createPostgresStore } from "../../src/stores/postgres/postgres-store.js";
import { createTestDatabase, postgresSkipReason } from "../support/postgres.js";
import {
  certificateOf,
  closeAfterTests,
  connectErrorOf,
  createTestPki,
  createTestStore,
  issueOutOfWindowCertificates,
  startEchoServer,
  waitFor,
  type OutOfWindowCertificates,
  type TestPki,
  type TestServer,
} from "../support/harness.js";
import { createTestMetrics, pointValue, type TestMetrics } from "../support/metrics.js";
import { createServicePki, serviceTransport, startService, type ServicePki } from "../support/service-harness.js";

const { servers, echoClient } = closeAfterTests();
const postgresSkip = await postgresSkipReason();
let pki: TestPki;
let outOfWindow: OutOfWindowCertificates;
// Expires in 10 days: within a 30-day warning window.
let soon: IssuedCertificate;
beforeAll(async () => {
  pki = await createTestPki();
  outOfWindow = await issueOutOfWindowCertificates(pki);
  soon = await issueDevCertificate(pki.ca, { commonName: "soon", notAfter: new Date(Date.now() + 10 * 86_400_000) });
});

const opened: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (opened.length > 0) await opened.pop()?.();
});

function testMetrics(temporality?: "delta"): TestMetrics {
  const m = createTestMetrics(temporality);
  opened.push(() => m.shutdown());
  return m;
}

async function serve(via: "gate" | "interceptor", options: ClientCertOptions): Promise<TestServer> {
  const server = await startEchoServer(
    via === "gate"
      ? { pki, requestGate: createClientCertGate(options) }
      : { pki, interceptors: [createClientCertInterceptor(options)] },
  );
  servers.push(server);
  return server;
}

const result = "certgate.decision.result";
const reason = "certgate.decision.reason";

describe("certgate.decisions", () => {
  for (const via of ["gate", "interceptor"] as const) {
    it(`counts admitted and refused calls by reason through the ${via}, on a real TLS server`, async () => {
      const m = testMetrics();
      const server = await serve(via, {
        store: createTestStore([pki.alice, outOfWindow.expired]),
        meterProvider: m.provider,
      });
      const alice = echoClient(server, pki, pki.alice);
      await alice.echo({ text: "1" });
      await alice.echo({ text: "2" });
      await echoClient(server, pki, pki.alice, "grpc").echo({ text: "3" });
      expect((await connectErrorOf(echoClient(server, pki, pki.bob).echo({ text: "x" }))).code).toBe(
        Code.Unauthenticated,
      );
      expect((await connectErrorOf(echoClient(server, pki, undefined).echo({ text: "x" }))).code).toBe(
        Code.Unauthenticated,
      );
      await connectErrorOf(echoClient(server, pki, outOfWindow.expired).echo({ text: "x" }));
      await connectErrorOf(echoClient(server, pki, outOfWindow.expired, "grpc").echo({ text: "x" }));

      const points = await m.points("certgate.decisions");
      expect(
        points.map((p) => p.attributes).sort((a, b) => String(a[reason] ?? "").localeCompare(String(b[reason] ?? ""))),
      ).toEqual([
        { [result]: "admitted", "certgate.decision.via": via },
        { [result]: "refused", [reason]: "expired", "certgate.decision.via": via },
        { [result]: "refused", [reason]: "no_certificate", "certgate.decision.via": via },
        { [result]: "refused", [reason]: "not_allowed", "certgate.decision.via": via },
      ]);
      expect(pointValue(points, { [result]: "admitted" })).toBe(3);
      expect(pointValue(points, { [reason]: "not_allowed" })).toBe(1);
      expect(pointValue(points, { [reason]: "no_certificate" })).toBe(1);
      expect(pointValue(points, { [reason]: "expired" })).toBe(2);
      expect(server.log.calls).toEqual(["echo", "echo", "echo"]);
    });
  }

  it("counts the gate and the interceptor of one server apart; a call refused by the gate never reaches the interceptor", async () => {
    const m = testMetrics();
    const options = { store: createTestStore([pki.alice]), meterProvider: m.provider };
    const server = await startEchoServer({
      pki,
      requestGate: createClientCertGate(options),
      interceptors: [createClientCertInterceptor(options)],
    });
    servers.push(server);
    await echoClient(server, pki, pki.alice).echo({ text: "1" });
    await connectErrorOf(echoClient(server, pki, pki.bob).echo({ text: "x" }));
    const points = await m.points("certgate.decisions");
    expect(pointValue(points, { [result]: "admitted", "certgate.decision.via": "gate" })).toBe(1);
    expect(pointValue(points, { [result]: "admitted", "certgate.decision.via": "interceptor" })).toBe(1);
    expect(pointValue(points, { [result]: "refused", "certgate.decision.via": "gate" })).toBe(1);
    expect(pointValue(points, { [result]: "refused", "certgate.decision.via": "interceptor" })).toBe(0);
  });

  it("adds up the calls of two gates on one meter provider", async () => {
    const m = testMetrics();
    const store = createTestStore([pki.alice]);
    const one = await serve("gate", { store, meterProvider: m.provider });
    const two = await serve("gate", { store, meterProvider: m.provider });
    await echoClient(one, pki, pki.alice).echo({ text: "1" });
    await echoClient(two, pki, pki.alice).echo({ text: "2" });
    await echoClient(two, pki, pki.alice).echo({ text: "3" });
    expect(await m.points("certgate.decisions")).toEqual([
      { attributes: { [result]: "admitted", "certgate.decision.via": "gate" }, value: 3 },
    ]);
  });

  it("names the procedure only with metricsProcedure", async () => {
    const plain = testMetrics();
    const named = testMetrics();
    const store = createTestStore([pki.alice]);
    const a = await serve("gate", { store, meterProvider: plain.provider });
    const b = await serve("gate", { store, meterProvider: named.provider, metricsProcedure: true });
    await echoClient(a, pki, pki.alice).echo({ text: "1" });
    await echoClient(b, pki, pki.alice).echo({ text: "1" });
    await connectErrorOf(echoClient(b, pki, pki.bob).echo({ text: "x" }));
    expect((await plain.points("certgate.decisions")).map((p) => p.attributes["rpc.method"])).toEqual([undefined]);
    const points = await named.points("certgate.decisions");
    expect(points.map((p) => [p.attributes[result], p.attributes["rpc.service"], p.attributes["rpc.method"]])).toEqual([
      ["admitted", "certgate.example.v1.EchoService", "Echo"],
      ["refused", "certgate.example.v1.EchoService", "Echo"],
    ]);
    expect(() => createClientCertGate({ store, metricsProcedure: "yes" as unknown as boolean })).toThrow(
      /metricsProcedure must be a boolean/,
    );
  });

  it("counts refusals of a report-only policy as report_only, and open procedures as open", async () => {
    const m = testMetrics();
    const server = await serve("interceptor", {
      store: createTestStore([pki.alice]),
      meterProvider: m.provider,
      rules: [{ procedure: "/certgate.example.v1.EchoService/EchoServerStream", allow: "any" }],
      reportOnly: true,
    });
    await echoClient(server, pki, pki.bob).echo({ text: "went through" });
    for await (const _ of echoClient(server, pki, undefined).echoServerStream({ text: "open", count: 1 })) {
      // drain
    }
    const points = await m.points("certgate.decisions");
    expect(pointValue(points, { [result]: "report_only", [reason]: "not_allowed" })).toBe(1);
    expect(pointValue(points, { [result]: "open" })).toBe(1);
    expect(pointValue(points, { [result]: "refused" })).toBe(0);
  });

  it("keeps a store's own refusal reasons out of the attributes (they are `refused`, as clients see them)", async () => {
    const m = testMetrics();
    const core = createDecisionCore({
      store: {
        revision: 1,
        lookup: async () => ({ kind: "refused", reason: "quarantined-by-team-x" }),
        onChange: () => () => {},
        close: async () => {},
      },
      meterProvider: m.provider,
    });
    const peer = {
      certificate: certificateOf(pki.alice),
      authorized: false,
      authorizationError: undefined,
      encrypted: true,
    };
    await core.enforce(peer, "/a.B/C", "grpc-js");
    expect((await m.points("certgate.decisions")).map((p) => p.attributes)).toEqual([
      { [result]: "refused", [reason]: "refused", "certgate.decision.via": "grpc-js" },
    ]);
  });
});

describe("certgate.store.lookup.duration", () => {
  it("is recorded for look-ups that leave the connection's cache only", async () => {
    const m = testMetrics();
    const store = createTestStore([pki.alice]);
    const server = await serve("gate", { store, meterProvider: m.provider });
    const alice = echoClient(server, pki, pki.alice);
    await alice.echo({ text: "1" });
    let points = await m.points("certgate.store.lookup.duration");
    expect(points).toEqual([
      { attributes: { "certgate.store.verdict": "admitted" }, value: 1, sum: expect.any(Number) },
    ]);
    expect(points[0]?.sum).toBeGreaterThan(0);
    await alice.echo({ text: "2" });
    expect(await m.points("certgate.store.lookup.duration")).toMatchObject([{ value: 1 }]);
    expect(store.lookups).toBe(1);
    // Another certificate is asked about, admitted or refused.
    const carol = await issueDevCertificate(pki.ca, { commonName: "carol", usages: ["client"] });
    store.add(carol);
    await echoClient(server, pki, carol).echo({ text: "3" });
    await connectErrorOf(echoClient(server, pki, pki.bob).echo({ text: "x" }));
    points = await m.points("certgate.store.lookup.duration");
    expect(pointValue(points, { "certgate.store.verdict": "admitted" })).toBe(2);
    expect(pointValue(points, { "certgate.store.verdict": "refused" })).toBe(1);
    expect((await m.metrics()).find((d) => d.name === "certgate.store.lookup.duration")?.unit).toBe("s");
  });
});

describe("certgate.certificates.expiring", () => {
  it("counts admitted certificates seen in the last 24 hours that expire within expiryWarningDays", async () => {
    const m = testMetrics();
    let now = Date.now();
    const store = createTestStore([pki.alice, soon]);
    const server = await serve("gate", { store, meterProvider: m.provider, expiryWarningDays: 30, clock: () => now });
    await echoClient(server, pki, pki.alice).echo({ text: "a year left" });
    expect(await m.points("certgate.certificates.expiring")).toEqual([
      { attributes: { "certgate.expiry_warning.days": 30 }, value: 0 },
    ]);
    const client = echoClient(server, pki, soon);
    await client.echo({ text: "10 days left" });
    await client.echo({ text: "again, the same certificate" });
    // Refused certificates are not counted.
    await connectErrorOf(echoClient(server, pki, pki.bob).echo({ text: "x" }));
    expect(await m.points("certgate.certificates.expiring")).toMatchObject([{ value: 1 }]);
    now += 25 * 3_600_000;
    expect(await m.points("certgate.certificates.expiring")).toMatchObject([{ value: 0 }]);
    // Seen again on the same connection: counted again.
    await client.echo({ text: "a day later" });
    expect(await m.points("certgate.certificates.expiring")).toMatchObject([{ value: 1 }]);
  });
});

describe("certgate.store.certificates", () => {
  it("reports the size of a memory store, under its name, until it is closed", async () => {
    // Delta temporality: a gauge whose callback is gone reports nothing.
    const m = testMetrics("delta");
    const store = createMemoryStore({ meterProvider: m.provider, metricsName: "allow-list" });
    await store.put("alice", pki.alice.der);
    await store.put("bob", pki.bob.der);
    const attributes = { "certgate.store.kind": "memory", "certgate.store.name": "allow-list" };
    expect(await m.points("certgate.store.certificates")).toEqual([{ attributes, value: 2 }]);
    await store.delete("bob");
    expect(await m.points("certgate.store.certificates")).toEqual([{ attributes, value: 1 }]);
    await store.close();
    expect(await m.points("certgate.store.certificates")).toEqual([]);
  });

  it("reports the size of a folder store", async () => {
    const m = testMetrics();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "certgate-metrics-"));
    opened.push(async () => fs.rmSync(dir, { recursive: true, force: true }));
    fs.writeFileSync(path.join(dir, "alice.pem"), pki.alice.cert);
    fs.writeFileSync(path.join(dir, "pair.pem"), pki.bob.cert + soon.cert);
    const store = await createDirectoryStore({ directory: dir, watch: false, meterProvider: m.provider });
    opened.push(() => store.close());
    expect(await m.points("certgate.store.certificates")).toEqual([
      { attributes: { "certgate.store.kind": "folder", "certgate.store.name": "folder" }, value: 3 },
    ]);
  });

  it.skipIf(postgresSkip !== undefined)(
    "reports each PostgreSQL store's copy, named, as changes reach it",
    async () => {
      const m = testMetrics();
      const db = await createTestDatabase();
      opened.push(() => db.drop());
      const writer = await createPostgresStore({
        connectionString: db.url,
        meterProvider: m.provider,
        metricsName: "writer",
      });
      opened.push(() => writer.close());
      const replica = await createPostgresStore({
        connectionString: db.url,
        meterProvider: m.provider,
        metricsName: "replica",
      });
      opened.push(() => replica.close());
      await writer.put("alice", pki.alice.der);
      await writer.put("bob", pki.bob.der);
      const sizes = async () =>
        Object.fromEntries(
          (await m.points("certgate.store.certificates")).map((p) => [p.attributes["certgate.store.name"], p.value]),
        );
      await waitFor(async () => (await sizes()).replica === 2, "the replica to hear of both");
      expect(await sizes()).toEqual({ writer: 2, replica: 2 });
      await writer.delete("bob");
      await waitFor(async () => (await sizes()).replica === 1, "the replica to hear of the deletion");
      expect((await m.points("certgate.store.certificates"))[0]?.attributes["certgate.store.kind"]).toBe("postgres");
    },
  );

  it("refuses a malformed meterProvider or metricsName at start-up, naming it", async () => {
    expect(() => createMemoryStore({ meterProvider: {} as never })).toThrow(
      /options\.meterProvider must be an OpenTelemetry MeterProvider/,
    );
    expect(() => createMemoryStore({ metricsName: 3 as never })).toThrow(/options\.metricsName/);
    expect(() => createClientCertGate({ store: createTestStore(), meterProvider: { getMeter: 1 } as never })).toThrow(
      /options\.meterProvider/,
    );
  });
});

describe("remote store metrics", () => {
  let spki: ServicePki;
  beforeAll(async () => {
    spki = await createServicePki();
  });

  it("reports the mirror's state, lag and size, and the lag grows while the service is gone", async () => {
    const m = testMetrics("delta");
    const backing = createMemoryStore();
    await backing.put("alice", spki.alice.der);
    const running = await startService(spki, backing, { watchHeartbeatMs: 200 });
    opened.push(() => running.close());
    const remote = createRemoteStore({
      transport: serviceTransport(running, spki, spki.reader, "grpc"),
      reconnectDelayMs: 20,
      maxReconnectDelayMs: 200,
      maxStaleMs: 60_000,
      meterProvider: m.provider,
    });
    opened.push(() => remote.close());
    await remote.ready();
    const stateOf = async () =>
      (await m.points("certgate.remote_store.state")).find((p) => p.value === 1)?.attributes[
        "certgate.remote_store.state"
      ];
    expect(await stateOf()).toBe("synced");
    expect((await m.points("certgate.remote_store.state")).length).toBe(5);
    expect(await m.points("certgate.remote_store.lag")).toMatchObject([{ value: 0 }]);
    expect(await m.points("certgate.store.certificates")).toEqual([
      { attributes: { "certgate.store.kind": "remote", "certgate.store.name": "remote" }, value: 1 },
    ]);
    await running.close();
    await waitFor(async () => (await stateOf()) === "stale", "the mirror to go stale");
    const lag = async () => (await m.points("certgate.remote_store.lag"))[0]?.value ?? 0;
    const first = await lag();
    await waitFor(async () => (await lag()) > first, "the lag to grow");
    await remote.close();
    expect(await m.points("certgate.remote_store.state")).toEqual([]);
  });

  it("reports lookup mode's state, without lag or size", async () => {
    const m = testMetrics();
    const running = await startService(spki, createMemoryStore());
    opened.push(() => running.close());
    const remote = createRemoteStore({
      transport: serviceTransport(running, spki, spki.reader, "grpc"),
      mode: "lookup",
      meterProvider: m.provider,
    });
    opened.push(() => remote.close());
    expect(pointValue(await m.points("certgate.remote_store.state"), { "certgate.remote_store.state": "synced" })).toBe(
      1,
    );
    expect(await m.points("certgate.remote_store.lag")).toEqual([]);
    expect(await m.points("certgate.store.certificates")).toEqual([]);
  });
});

describe("metrics memory", () => {
  const admitAll = {
    revision: 1,
    lookup: async () => ({ kind: "admitted" as const, entry: { id: "any" } }),
    onChange: () => () => {},
    close: async () => {},
  };
  const peerOf = (certificate: object) =>
    ({ certificate, authorized: false, authorizationError: undefined, encrypted: true }) as never;

  it("names at most 1000 procedures; the rest are _OTHER", async () => {
    const m = testMetrics();
    const core = createDecisionCore({ store: admitAll, meterProvider: m.provider, metricsProcedure: true });
    const peer = peerOf(certificateOf(pki.alice));
    for (let i = 0; i < 1005; i++) await core.enforce(peer, `/pkg.v1.S/M${i}`, "grpc-js");
    const points = await m.points("certgate.decisions");
    expect(points.length).toBe(1001);
    expect(pointValue(points, { "rpc.method": "M999" })).toBe(1);
    expect(pointValue(points, { "rpc.service": "_OTHER", "rpc.method": "_OTHER" })).toBe(5);
  });

  it("remembers at most 10000 certificates for the expiry gauge", async () => {
    const m = testMetrics();
    const core = createDecisionCore({ store: admitAll, meterProvider: m.provider });
    const notAfter = new Date(Date.now() + 86_400_000);
    const notBefore = new Date(Date.now() - 86_400_000);
    for (let i = 0; i < 10_050; i++) {
      await core.enforce(peerOf({ sha256: `C${i}`, notAfter, notBefore }), "/pkg.v1.S/M", "grpc-js");
    }
    expect(await m.points("certgate.certificates.expiring")).toMatchObject([{ value: 10_000 }]);
  });
});

describe("certgate's instruments", () => {
  it("have the contract names and UCUM units", async () => {
    const m = testMetrics();
    const store = createMemoryStore({ meterProvider: m.provider, certificates: [pki.alice.der] });
    opened.push(() => store.close());
    const server = await serve("gate", { store, meterProvider: m.provider });
    await echoClient(server, pki, pki.alice).echo({ text: "1" });
    const units = Object.fromEntries((await m.metrics()).map((d) => [d.name, d.unit]));
    expect(units).toEqual({
      "certgate.decisions": "{decision}",
      "certgate.store.lookup.duration": "s",
      "certgate.certificates.expiring": "{certificate}",
      "certgate.store.certificates": "{certificate}",
    });
  });
});

describe("the global meter provider", () => {
  afterEach(() => {
    metrics.disable();
  });

  it("is recorded to by default, once registered", async () => {
    const m = testMetrics();
    metrics.setGlobalMeterProvider(m.provider);
    const server = await serve("gate", { store: createTestStore([pki.alice]) });
    await echoClient(server, pki, pki.alice).echo({ text: "1" });
    expect(pointValue(await m.points("certgate.decisions"), { [result]: "admitted" })).toBe(1);
  });

  it("without one registered, there is no meter, and calls are decided as before", async () => {
    expect(meterOf(undefined)).toBeUndefined();
    const server = await serve("interceptor", { store: createTestStore([pki.alice]) });
    await echoClient(server, pki, pki.alice).echo({ text: "1" });
    expect((await connectErrorOf(echoClient(server, pki, pki.bob).echo({ text: "x" }))).code).toBe(
      Code.Unauthenticated,
    );
    // A provider registered afterwards hears nothing of this interceptor: the check is made at start-up.
    const m = testMetrics();
    metrics.setGlobalMeterProvider(m.provider);
    await echoClient(server, pki, pki.alice).echo({ text: "2" });
    expect(await m.points("certgate.decisions")).toEqual([]);
  });
});
