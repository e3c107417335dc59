// The certificate store service on the PostgreSQL store, several replicas in
// this process on one database: watches resume on any replica, a replica cut
// off from the database stops serving. Skipped without PostgreSQL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import type { WatchCertificatesResponse } from "../../../src/gen/certgate/v1/certificate_store_pb.js";
import {
  Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "../../../src/gen/grpc/health/v1/health_pb.js";
import { createPostgresStore, type PostgresStore } from "../../../src/stores/postgres/postgres-store.js";
import { waitFor } from "../../support/harness.js";
import {
  codeOf,
  createServicePki,
  readWatch,
  serviceTransport,
  startService,
  storeClient,
  type RunningService,
  type ServicePki,
} from "../../support/service-harness.js";
import { createTestDatabase, postgresSkipReason, type TestDatabase } from "../../support/postgres.js";
import { startTcpProxy } from "../../support/tcp-proxy.js";

const skip = await postgresSkipReason();

describe.skipIf(skip !== undefined)("createCertificateStoreServer() on createPostgresStore()", () => {
  let db: TestDatabase;
  let pki: ServicePki;
  const stores: PostgresStore[] = [];
  const services: RunningService[] = [];
  beforeAll(async () => {
    [db, pki] = await Promise.all([createTestDatabase(), createServicePki()]);
  });
  afterAll(async () => {
    await Promise.all(services.map((s) => s.close()));
    await Promise.all(stores.map((s) => s.close()));
    await db?.drop();
  });

  async function replica(schema: string, connectionString = db.url): Promise<RunningService> {
    const store = await createPostgresStore({ connectionString, schema, catchUpIntervalMs: 100 });
    stores.push(store);
    const service = await startService(pki, store);
    services.push(service);
    return service;
  }

  // Reads a watch up to the heartbeat that ends its catch-up.
  async function catchUp(service: RunningService, request: { sinceRevision?: bigint; storeEpoch?: string } = {}) {
    const abort = new AbortController();
    const stream = storeClient(service, pki, pki.reader).watchCertificates(request, { signal: abort.signal });
    return readWatch(stream, (event) => event.event.case === "heartbeat", abort);
  }

  it("resumes a watch on another replica with exactly the changes it missed, or a snapshot once they were pruned", async () => {
    const a = await replica("resume");
    const b = await replica("resume");
    await storeClient(a, pki, pki.admin).createCertificate({ certificateId: "alice", certificate: pki.alice.der });
    const first = await catchUp(a);
    expect(first.map((e) => e.event.case)).toEqual(["snapshot", "heartbeat"]);
    const { revision, storeEpoch } = first[first.length - 1]!;
    const writer = storeClient(b, pki, pki.admin);
    await writer.createCertificate({ certificateId: "bob", certificate: pki.bob.der });
    await writer.deleteCertificate({ certificateId: "alice" });
    // A replica started after the changes has none of them in memory: it reads them from the log.
    const c = await replica("resume");
    for (const service of [b, c]) {
      const resumed = await catchUp(service, { sinceRevision: revision, storeEpoch });
      // The two changes, in order; a watcher behind may get them merged into one event
      // (different ids), its revision the later one's.
      expect(resumed[resumed.length - 1]!.event.case).toBe("heartbeat");
      const changes = resumed.slice(0, -1) as WatchCertificatesResponse[];
      expect(changes.length === 1 || changes.length === 2).toBe(true);
      expect(changes.every((e) => e.event.case === "change")).toBe(true);
      const values = changes.map(
        (e) => e.event.value as { upserted: { certificateId: string }[]; deletedCertificateIds: string[] },
      );
      expect(values.flatMap((v) => v.upserted.map((c) => c.certificateId))).toEqual(["bob"]);
      expect(values.flatMap((v) => v.deletedCertificateIds)).toEqual(["alice"]);
      expect(changes[0]!.revision).toBeGreaterThan(revision);
      for (let i = 1; i < changes.length; i++) expect(changes[i]!.revision).toBeGreaterThan(changes[i - 1]!.revision);
      expect(resumed.every((e) => e.storeEpoch === storeEpoch)).toBe(true);
    }
    // A revision this store never reached (a database restored from a backup), another store's epoch, or a pruned log: a snapshot.
    expect((await catchUp(c, { sinceRevision: revision + 1000n, storeEpoch })).map((e) => e.event.case)).toEqual([
      "snapshot",
      "heartbeat",
    ]);
    expect((await catchUp(c, { sinceRevision: revision, storeEpoch: "another" })).map((e) => e.event.case)).toEqual([
      "snapshot",
      "heartbeat",
    ]);
    await db.pool.query(
      "WITH d AS (DELETE FROM resume.changes RETURNING revision) UPDATE resume.store_info SET pruned_through = (SELECT max(revision) FROM d)",
    );
    const d = await replica("resume");
    const afterPrune = await catchUp(d, { sinceRevision: revision, storeEpoch });
    expect(afterPrune.map((e) => e.event.case)).toEqual(["snapshot", "heartbeat"]);
    expect(afterPrune[0]!.event.value).toMatchObject({ certificates: [{ certificateId: "bob" }] });
  });

  it("answers invalid_argument, never a database error, to invalid ids, junk DER and values the database cannot hold", async () => {
    const service = await replica("invalid");
    const admin = storeClient(service, pki, pki.admin);
    const reader = storeClient(service, pki, pki.reader);
    const nul = "a\u0000b";
    expect(await codeOf(admin.listAuditEvents({ certificateId: nul }))).toBe(Code.InvalidArgument);
    expect(await codeOf(admin.listAuditEvents({ certificateId: "a\u0001" }))).toBe(Code.InvalidArgument);
    expect(await codeOf(reader.getCertificate({ certificateId: nul }))).toBe(Code.InvalidArgument);
    expect(await codeOf(admin.deleteCertificate({ certificateId: nul }))).toBe(Code.InvalidArgument);
    expect(await codeOf(admin.createCertificate({ certificateId: nul, certificate: pki.alice.der }))).toBe(
      Code.InvalidArgument,
    );
    expect(await codeOf(reader.listCertificates({ pageToken: Buffer.from(nul).toString("base64url") }))).toBe(
      Code.InvalidArgument,
    );
    expect(
      await codeOf(
        admin.createCertificate({ certificateId: "labelled", certificate: pki.alice.der, labels: { team: "a\u0000" } }),
      ),
    ).toBe(Code.InvalidArgument);
    // Junk DER that opens like a key is junk, not a key.
    const junk = await admin
      .createCertificate({ certificateId: "junk", certificate: Buffer.from("MAMCAQA=", "base64") })
      .then(
        () => undefined,
        (error: unknown) => ConnectError.from(error),
      );
    expect(junk?.code).toBe(Code.InvalidArgument);
    expect(junk?.rawMessage).toMatch(/not a certificate/);
    expect(junk?.rawMessage).not.toMatch(/private key/);
    // The admitted counterpart: a valid filter and a valid upload pass.
    expect(await codeOf(admin.listAuditEvents({ certificateId: "junk" }))).toBe("ok");
    expect(await codeOf(admin.createCertificate({ certificateId: "alice", certificate: pki.alice.der }))).toBe("ok");
  });

  it("reports NOT_SERVING, refuses writes and ends watches while the database is unreachable, and recovers", async () => {
    const target = new URL(db.url);
    const proxy = await startTcpProxy(Number(target.port || 5432), target.hostname);
    try {
      target.host = `127.0.0.1:${proxy.port}`;
      const service = await replica("health", target.toString());
      const health = createClient(Health, serviceTransport(service, pki, undefined));
      const admin = storeClient(service, pki, pki.admin);
      expect((await health.check({})).status).toBe(ServingStatus.SERVING);
      const abort = new AbortController();
      const watch = (async () => {
        try {
          for await (const _ of storeClient(service, pki, pki.reader).watchCertificates({}, { signal: abort.signal })) {
            // Read until the service ends the watch.
          }
          return "ended";
        } catch (error) {
          return ConnectError.from(error).code;
        }
      })();
      proxy.cut();
      await waitFor(async () => (await health.check({})).status === ServingStatus.NOT_SERVING, "NOT_SERVING");
      expect((await health.check({ service: "certgate.v1.CertificateStoreService" })).status).toBe(
        ServingStatus.NOT_SERVING,
      );
      expect(await watch).toBe(Code.Unavailable);
      expect(await codeOf(admin.createCertificate({ certificateId: "x", certificate: pki.alice.der }))).toBe(
        Code.Unavailable,
      );
      expect(await codeOf(admin.listCertificates({}))).toBe(Code.Unavailable);
      proxy.restore();
      await waitFor(async () => (await health.check({})).status === ServingStatus.SERVING, "SERVING again");
      expect(await codeOf(admin.createCertificate({ certificateId: "x", certificate: pki.alice.der }))).toBe("ok");
      abort.abort();
    } finally {
      await proxy.close();
    }
  });
});
