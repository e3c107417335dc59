// CreateCertificates (all or nothing, each refusal named) on PostgreSQL and
// on the folder store, and ListCertificates paging by key at 10,000
// certificates: stable under concurrent writes, filters served by indexes.
// Skipped without PostgreSQL (except under CI).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { CertificateBatchErrorSchema } from "../../../src/gen/certgate/v1/certificate_store_pb.js";
import { createPostgresStore, type PostgresStore } from "../../../src/stores/postgres/postgres-store.js";
import { createDirectoryStore } from "../../../src/stores/directory-store.js";
import type { WritableCertificateStore } from "../../../src/core/store.js";
import {
  createServicePki,
  startService,
  storeClient,
  type RunningService,
  type ServicePki,
} from "../../support/service-harness.js";
import { createTestDatabase, postgresSkipReason, type TestDatabase } from "../../support/postgres.js";
import { generateCertificates } from "../../support/many-certificates.js";

const skip = await postgresSkipReason();

function batchItems(error: unknown) {
  return ConnectError.from(error).findDetails(CertificateBatchErrorSchema)[0]?.items ?? [];
}

describe.skipIf(skip !== undefined)("CreateCertificates and ListCertificates on createPostgresStore()", () => {
  let db: TestDatabase;
  let pki: ServicePki;
  let ders: Uint8Array[];
  let folder: string;
  const stores: WritableCertificateStore[] = [];
  const services: RunningService[] = [];
  beforeAll(async () => {
    [db, pki, { ders }] = await Promise.all([createTestDatabase(), createServicePki(), generateCertificates(10_000)]);
    folder = await mkdtemp(join(tmpdir(), "certgate-batch-"));
  });
  afterAll(async () => {
    await Promise.all(services.map((s) => s.close()));
    await Promise.all(stores.map((s) => s.close()));
    await db?.drop();
    if (folder !== undefined) await rm(folder, { recursive: true, force: true });
  });

  async function serve(store: WritableCertificateStore): Promise<RunningService> {
    stores.push(store);
    const service = await startService(pki, store);
    services.push(service);
    return service;
  }

  async function postgres(schema: string): Promise<{ store: PostgresStore; service: RunningService }> {
    const store = await createPostgresStore({ connectionString: db.url, schema, catchUpIntervalMs: 100 });
    return { store, service: await serve(store) };
  }

  const item = (i: number, labels: Record<string, string> = {}) => ({
    certificateId: `device-${String(i).padStart(5, "0")}`,
    certificate: ders[i]!,
    labels,
  });

  for (const kind of ["postgres", "folder"] as const) {
    it(`stores a batch all or nothing on the ${kind} store, naming each refused item`, async () => {
      const service =
        kind === "postgres"
          ? (await postgres("batch")).service
          : await serve(await createDirectoryStore({ directory: folder, watch: false, onProblem: () => {} }));
      const admin = storeClient(service, pki, pki.admin);
      const stored = await admin.createCertificates({ requests: [0, 1, 2].map((i) => item(i, { site: "a" })) });
      expect(stored.certificates.map((c) => c.certificateId)).toEqual(["device-00000", "device-00001", "device-00002"]);

      // One bad item (not a certificate), one taken id, one id given twice: nothing of the batch is stored.
      const bad = [
        item(3),
        { certificateId: "broken", certificate: new Uint8Array([1, 2, 3]), labels: {} },
        item(1),
        item(4),
        item(4),
      ];
      const error = await admin.createCertificates({ requests: bad }).catch((e: unknown) => e);
      expect(ConnectError.from(error).code).toBe(Code.InvalidArgument);
      const items = batchItems(error);
      expect(items.map((i) => [i.index, i.certificateId, i.code])).toEqual([
        [1, "broken", "invalid_argument"],
        [4, "device-00004", "invalid_argument"],
      ]);
      // Valid items but a taken id: AlreadyExists, the taken one named.
      const taken = await admin.createCertificates({ requests: [item(3), item(1), item(4)] }).catch((e: unknown) => e);
      expect(ConnectError.from(taken).code).toBe(Code.AlreadyExists);
      expect(batchItems(taken).map((i) => [i.index, i.certificateId, i.code])).toEqual([
        [1, "device-00001", "already_exists"],
      ]);
      const listed = await admin.listCertificates({ pageSize: 100 });
      expect(listed.certificates.map((c) => c.certificateId)).toEqual(["device-00000", "device-00001", "device-00002"]);

      // The audit trail: one create_batch event with the count, one create per id.
      const events = (await admin.listAuditEvents({ pageSize: 100 })).events.filter((e) => e.result === "ok");
      expect(events.filter((e) => e.action === "create_batch").map((e) => e.reason)).toEqual(["3 certificates"]);
      expect(
        events
          .filter((e) => e.action === "create")
          .map((e) => e.certificateId)
          .sort(),
      ).toEqual(["device-00000", "device-00001", "device-00002"]);

      // Readers and strangers are refused, and nothing is stored.
      for (const client of [pki.reader, pki.stranger]) {
        const refused = await storeClient(service, pki, client)
          .createCertificates({ requests: [item(5)] })
          .catch((e: unknown) => e);
        expect([Code.PermissionDenied, Code.Unauthenticated]).toContain(ConnectError.from(refused).code);
      }
      expect((await admin.listCertificates({ pageSize: 100 })).certificates).toHaveLength(3);
      // More than 1000, or none: refused.
      expect(ConnectError.from(await admin.createCertificates({ requests: [] }).catch((e: unknown) => e)).code).toBe(
        Code.InvalidArgument,
      );
    });
  }

  it("pages 10,000 certificates by key: no duplicates or skips under concurrent writes, filters by index", async () => {
    const { store, service } = await postgres("paging");
    const admin = storeClient(service, pki, pki.admin);
    for (let from = 0; from < 10_000; from += 1000) {
      const requests = Array.from({ length: 1000 }, (_, k) =>
        item(from + k, { site: (from + k) % 10 === 0 ? "rare" : "common" }),
      );
      await admin.createCertificates({ requests });
    }
    expect(store.stats().certificates).toBe(10_000);

    // Pages while certificates are added and deleted: every certificate
    // present throughout is listed exactly once.
    const seen: string[] = [];
    let token = "";
    let writes = 0;
    do {
      const page = await admin.listCertificates({ pageSize: 500, pageToken: token });
      seen.push(...page.certificates.map((c) => c.certificateId));
      token = page.nextPageToken;
      // Writers at both ends of the key space and in the middle.
      const extra = 10_000 - 1 - writes;
      await admin
        .createCertificate({ certificateId: `a-new-${writes}`, certificate: ders[extra]! })
        .catch(() => undefined);
      await admin
        .createCertificate({ certificateId: `z-new-${writes}`, certificate: ders[extra]! })
        .catch(() => undefined);
      await admin.deleteCertificate({ certificateId: `device-${String(5000 + writes).padStart(5, "0")}` });
      writes++;
    } while (token !== "");
    const stable = Array.from({ length: 10_000 }, (_, i) => `device-${String(i).padStart(5, "0")}`).filter(
      (id) => !(id >= "device-05000" && id < `device-${String(5000 + writes).padStart(5, "0")}`),
    );
    const listed = new Set(seen);
    expect(listed.size).toBe(seen.length);
    expect(stable.filter((id) => !listed.has(id))).toEqual([]);

    // A watcher's snapshot, streamed page by page: the DER only when asked for.
    for (const includeDer of [false, true]) {
      const abort = new AbortController();
      let snapshot = 0;
      let withDer = 0;
      for await (const event of storeClient(service, pki, pki.reader).watchCertificates(
        { includeDer },
        { signal: abort.signal },
      )) {
        if (event.event.case === "heartbeat") break;
        if (event.event.case !== "snapshot") continue;
        snapshot += event.event.value.certificates.length;
        withDer += event.event.value.certificates.filter((c) => c.der.length > 0).length;
      }
      abort.abort();
      expect(snapshot).toBe(store.stats().certificates);
      expect(withDer).toBe(includeDer ? snapshot : 0);
    }

    // Verify by either thumbprint reads the certificate back from the database.
    const known = (await admin.getCertificate({ certificateId: "device-00042" })).certificate!;
    for (const thumbprint of [known.sha1Thumbprint, known.sha256Thumbprint]) {
      const verdict = await admin.verifyCertificate({ subject: { case: "thumbprint", value: thumbprint } });
      expect(verdict.admitted).toBe(true);
      expect(verdict.certificate?.certificateId).toBe("device-00042");
    }

    // Filters: labels by the GIN index, expiry by the not_after index.
    const rare = await admin.listCertificates({ pageSize: 1000, labels: { site: "rare" } });
    expect(rare.certificates.length).toBeGreaterThan(900);
    expect(rare.certificates.every((c) => c.labels.site === "rare")).toBe(true);
    const none = await admin.listCertificates({
      pageSize: 10,
      expiresBefore: timestampFromDate(new Date(Date.UTC(2000, 0, 1))),
    });
    expect(none.certificates).toEqual([]);
    const all = await admin.listCertificates({
      pageSize: 10,
      expiresBefore: timestampFromDate(new Date(Date.UTC(9000, 0, 1))),
    });
    expect(all.certificates).toHaveLength(10);
    await db.pool.query("ANALYZE paging.certificates");
    const plan = async (sql: string) =>
      (await db.pool.query(`EXPLAIN ${sql}`)).rows.map((r: Record<string, string>) => Object.values(r)[0]).join("\n");
    expect(
      await plan(`SELECT id FROM paging.certificates WHERE labels @> '{"site":"rare"}' ORDER BY id LIMIT 100`),
    ).toMatch(/certificates_labels|certificates_pkey/);
    expect(
      await plan(
        `SELECT id FROM paging.certificates WHERE (not_after < '2000-01-01' OR not_after IS NULL) ORDER BY id LIMIT 100`,
      ),
    ).toMatch(/certificates_not_after/);
    expect(await plan(`SELECT id FROM paging.certificates WHERE id > 'device-09000' ORDER BY id LIMIT 100`)).toMatch(
      /Index.*certificates_pkey/,
    );
  });
});
