// The PostgreSQL store under the faults that matter in a fleet: a replica
// whose database stops answering (packets held, no reset), a write lock held
// by a stuck session, a replica that vanishes while it holds the lock.
// Replicas run in this process, each behind a TCP proxy the test controls;
// the deadlines are small so that the faults play out fast. Skipped without
// PostgreSQL.
import { rm } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { IssuedCertificate } from "../../../src/dev-certificates.js";
import { CertificateStoreService } from "../../../src/gen/certgate/v1/certificate_store_pb.js";
import pg from "pg";
import { parseCertificate } from "../../../src/core/certificate.js";
import type { ReplicaState } from "../../../src/core/store.js";
import {
  Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "../../../src/gen/grpc/health/v1/health_pb.js";
import {
  createPostgresStore,
  type PostgresStore,
  type PostgresStoreOptions,
} from "../../../src/stores/postgres/postgres-store.js";
import { lockClass, writeLock } from "../../../src/stores/postgres/schema.js";
import { createRemoteStore, type RemoteStore, type RemoteStoreEvent } from "../../../src/stores/remote-store.js";
import {
  createCliFixture,
  killAll,
  serveAccessArgs,
  startServe,
  type CliFixture,
  type Serve,
} from "../../support/cli-harness.js";
import { waitFor } from "../../support/harness.js";
import { generateCertificates } from "../../support/many-certificates.js";
import { createTestDatabase, postgresSkipReason, type TestDatabase } from "../../support/postgres.js";
import {
  codeOf,
  createServicePki,
  serviceTransport,
  startService,
  storeClient,
  type RunningService,
  type ServicePki,
} from "../../support/service-harness.js";
import { startTcpProxy, type TcpProxy } from "../../support/tcp-proxy.js";

const skip = await postgresSkipReason();
const signal = new AbortController().signal;
const admits = async (store: RemoteStore, der: Uint8Array) =>
  (await store.lookup(parseCertificate(der), signal)).kind === "admitted";

// Small deadlines; the holder's idle limit is under the waiters' lock wait,
// as with the defaults.
const fast: Partial<PostgresStoreOptions> = {
  catchUpIntervalMs: 50,
  changeReadTimeoutMs: 1000,
  queryTimeoutMs: 2000,
  statementTimeoutMs: 1500,
  lockTimeoutMs: 1000,
  idleInTransactionTimeoutMs: 400,
  connectTimeoutMs: 1000,
};

describe.skipIf(skip !== undefined)("createPostgresStore() under faults", () => {
  let db: TestDatabase;
  let pki: ServicePki;
  const stores: PostgresStore[] = [];
  const services: RunningService[] = [];
  const proxies: TcpProxy[] = [];
  const mirrors: RemoteStore[] = [];
  const sessions: pg.Client[] = [];
  beforeAll(async () => {
    [db, pki] = await Promise.all([createTestDatabase(), createServicePki()]);
  });
  afterAll(async () => {
    await Promise.all(mirrors.map((m) => m.close()));
    await Promise.all(sessions.map((s) => s.end().catch(() => undefined)));
    await Promise.all(services.map((s) => s.close()));
    await Promise.all(stores.map((s) => s.close()));
    await Promise.all(proxies.map((p) => p.close()));
    await db?.drop();
  });

  interface Replica {
    store: PostgresStore;
    service: RunningService;
    proxy: TcpProxy;
    states: { state: ReplicaState; error: unknown }[];
    health(): Promise<ServingStatus>;
  }

  // A replica whose database connections all go through a proxy of its own.
  async function replica(schema: string, options: Partial<PostgresStoreOptions> = {}): Promise<Replica> {
    const target = new URL(db.url);
    const proxy = await startTcpProxy(Number(target.port || 5432), target.hostname);
    proxies.push(proxy);
    target.host = `127.0.0.1:${proxy.port}`;
    const states: Replica["states"] = [];
    const store = await createPostgresStore({
      connectionString: target.toString(),
      schema,
      ...fast,
      ...options,
      onStateChange: (state, error) => states.push({ state, error }),
    });
    stores.push(store);
    const service = await startService(pki, store);
    services.push(service);
    const health = createClient(Health, serviceTransport(service, pki, undefined));
    return { store, service, proxy, states, health: async () => (await health.check({})).status };
  }

  function mirror(...replicas: Replica[]): RemoteStore {
    const store = createRemoteStore({
      transports: replicas.map((r) => serviceTransport(r.service, pki, pki.reader, "grpc")),
      idleTimeoutMs: 1000,
      reconnectDelayMs: 20,
      maxReconnectDelayMs: 200,
    });
    mirrors.push(store);
    return store;
  }
  // A session that takes the store's write lock and then does nothing, as an
  // operator's psql left in a transaction would.
  async function holdWriteLock(schema: string): Promise<pg.Client> {
    const session = new pg.Client({ connectionString: db.url });
    sessions.push(session);
    await session.connect();
    await session.query("BEGIN");
    await session.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [lockClass + writeLock, schema]);
    return session;
  }

  // The backends holding the store's write lock, with their client ports.
  async function lockHolders(schema: string): Promise<{ pid: number; port: number; state: string }[]> {
    const result = await db.pool.query<{ pid: number; port: number; state: string }>(
      `SELECT l.pid, a.client_port AS port, a.state FROM pg_locks l JOIN pg_stat_activity a USING (pid)
        WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::bigint::oid
          AND l.objid = hashtext($2)::bigint::oid`,
      [lockClass + writeLock, schema],
    );
    return result.rows;
  }

  it("a replica whose database stops answering stops serving and ends its watches; a mirror refuses a certificate deleted on another replica", async () => {
    const a = await replica("partition");
    const b = await replica("partition");
    const admin = storeClient(b.service, pki, pki.admin);
    await admin.createCertificate({ certificateId: "alice", certificate: pki.alice.der });
    await admin.createCertificate({ certificateId: "bob", certificate: pki.bob.der });
    const both = mirror(a, b);
    await both.ready();
    await waitFor(() => admits(both, pki.alice.der), "the mirror to admit alice");

    a.proxy.hold();
    await admin.deleteCertificate({ certificateId: "alice" });
    await waitFor(async () => !(await admits(both, pki.alice.der)), "the mirror to refuse alice");
    await waitFor(async () => (await a.health()) === ServingStatus.NOT_SERVING, "A to report NOT_SERVING");
    // It says why, and refuses to answer from its stale copy meanwhile.
    expect(a.states[0]).toMatchObject({ state: "unavailable" });
    expect(String(a.states[0]!.error)).toMatch(/timeout/i);
    expect(await codeOf(storeClient(a.service, pki, pki.reader).getCertificate({ certificateId: "alice" }))).toBe(
      Code.Unavailable,
    );
    // The mirror moved on to B, which still admits bob.
    await waitFor(() => admits(both, pki.bob.der), "the mirror to admit bob through B");
    expect(await b.health()).toBe(ServingStatus.SERVING);

    a.proxy.restore();
    await waitFor(async () => (await a.health()) === ServingStatus.SERVING, "A to serve again");
    expect(await a.store.get("alice")).toBeUndefined();
    expect(a.states.at(-1)).toMatchObject({ state: "connected" });
  });

  it("closes within its deadline while the database does not answer", async () => {
    const a = await replica("closing");
    a.proxy.hold();
    await waitFor(async () => (await a.health()) === ServingStatus.NOT_SERVING, "A to report NOT_SERVING");
    await a.service.close();
    await a.store.close();
    expect(a.store.state).toBe("unavailable");
    a.proxy.restore();
  });

  it("a write lock held by a stuck session: a healthy replica stays SERVING, uploads succeed or fail Unavailable, and every acknowledged one has its audit record", async () => {
    // A loaded machine must not pass for a starved replica: reads get room here.
    const a = await replica("stuck", { changeReadTimeoutMs: 5000 });
    const { ders } = await generateCertificates(21, "stuck");
    const stuck = await holdWriteLock("stuck");
    const admin = storeClient(a.service, pki, pki.admin);
    let released: Promise<unknown> | undefined;
    const results = await Promise.all(
      ders.slice(0, 20).map(async (der, i) => {
        const code = await codeOf(admin.createCertificate({ certificateId: `u${i}`, certificate: der }));
        // The lock frees once the first upload gave up: later ones may pass.
        if (code !== "ok") released ??= stuck.query("ROLLBACK");
        return code;
      }),
    );
    await released;
    expect(results).toContain(Code.Unavailable);
    expect(results.every((code) => code === "ok" || code === Code.Unavailable)).toBe(true);
    expect(a.states).toEqual([]);
    expect(await a.health()).toBe(ServingStatus.SERVING);
    expect(await codeOf(admin.createCertificate({ certificateId: "after", certificate: ders[20]! }))).toBe("ok");

    const acknowledged = ["after", ...results.flatMap((code, i) => (code === "ok" ? [`u${i}`] : []))];
    const audited = new Set(
      (await a.store.audit.list({ limit: 1000 })).events
        .filter((e) => e.action === "create" && e.result === "ok")
        .map((e) => e.certificateId),
    );
    expect(acknowledged.filter((id) => !audited.has(id))).toEqual([]);
    const stored = (await a.store.list({ limit: 1000 })).map((c) => c.id).sort();
    expect(stored).toEqual(acknowledged.sort());
  });

  it("a replica that vanishes while it holds the write lock cannot block a deletion on another replica", async () => {
    const a = await replica("vanish", { queryTimeoutMs: 60_000 });
    const b = await replica("vanish");
    const admin = storeClient(b.service, pki, pki.admin);
    await admin.createCertificate({ certificateId: "alice", certificate: pki.alice.der });

    // A's upload takes the lock, then A's network goes silent: its COMMIT never arrives.
    const held = a.proxy.holdAfter("pg_advisory_xact_lock");
    const upload = codeOf(
      storeClient(a.service, pki, pki.admin).createCertificate({ certificateId: "bob", certificate: pki.bob.der }),
    );
    await held;
    await waitFor(
      async () => (await lockHolders("vanish")).some((h) => a.proxy.upstreamPorts().includes(h.port)),
      "A's session to hold the write lock",
    );

    expect(await codeOf(admin.deleteCertificate({ certificateId: "alice" }))).toBe("ok");
    expect(await b.store.get("alice")).toBeUndefined();
    // The server ended A's transaction: its upload is not in the store.
    expect(await lockHolders("vanish")).toEqual([]);
    a.proxy.restore();
    expect(await upload).not.toBe("ok");
    expect(await b.store.get("bob")).toBeUndefined();
  });
});

describe.skipIf(skip !== undefined)("certgate serve --database, a replica frozen mid-write", () => {
  let fx: CliFixture;
  let db: TestDatabase;
  let proxy: TcpProxy;
  let a: Serve;
  let b: Serve;
  let both: RemoteStore | undefined;
  beforeAll(async () => {
    [fx, db] = await Promise.all([createCliFixture(), createTestDatabase()]);
    const target = new URL(db.url);
    proxy = await startTcpProxy(Number(target.port || 5432), target.hostname);
    const viaProxy = new URL(db.url);
    viaProxy.host = `127.0.0.1:${proxy.port}`;
    const args = (url: string) => ["--database", url, ...serveAccessArgs(fx)];
    [a, b] = await Promise.all([startServe(args(viaProxy.toString())), startServe(args(db.url))]);
  });
  afterAll(async () => {
    await both?.close();
    a?.child.kill("SIGCONT");
    await Promise.all([a?.stop("SIGKILL"), b?.stop()]);
    killAll();
    await proxy?.close();
    await db?.drop();
    await rm(fx.tmp, { recursive: true, force: true });
  });

  const transport = (serve: Serve, client: IssuedCertificate) =>
    createGrpcTransport({
      baseUrl: serve.url,
      nodeOptions: { ca: fx.pki.ca.cert, cert: client.cert, key: client.key },
    });
  const admin = (serve: Serve) => createClient(CertificateStoreService, transport(serve, fx.admin));

  it("a replica stopped (SIGSTOP) while it holds the write lock blocks no deletion, and mirrors leave it within seconds", async () => {
    await admin(b).createCertificate({ certificateId: "alice", certificate: fx.pki.alice.der });
    const events: RemoteStoreEvent[] = [];
    // The default heartbeat deadline.
    both = createRemoteStore({
      transports: [transport(a, fx.reader), transport(b, fx.reader)],
      onEvent: (e) => events.push(e),
    });
    await both.ready();
    await waitFor(() => admits(both!, fx.pki.alice.der), "the mirror to admit alice");

    // A's upload takes the lock; A is frozen before it can commit.
    const held = proxy.holdAfter("pg_advisory_xact_lock");
    const upload = codeOf(admin(a).createCertificate({ certificateId: "bob", certificate: fx.pki.bob.der }));
    await held;
    a.child.kill("SIGSTOP");
    proxy.restore();

    expect(await codeOf(admin(b).deleteCertificate({ certificateId: "alice" }))).toBe("ok");
    await waitFor(async () => !(await admits(both!, fx.pki.alice.der)), "the mirror to refuse alice");
    await waitFor(() => events.some((e) => e.kind === "synced" && e.transportIndex === 1), "the mirror to follow B");

    a.child.kill("SIGCONT");
    expect(await upload).not.toBe("ok");
    expect(await codeOf(admin(a).createCertificate({ certificateId: "bob", certificate: fx.pki.bob.der }))).toBe("ok");
    await waitFor(() => admits(both!, fx.pki.bob.der), "the mirror to admit bob");
    expect(await admits(both!, fx.pki.alice.der)).toBe(false);
  });
});
