// `certgate import` as a real process against the certificate store service
// on PostgreSQL: 10,000 certificates from one PEM file, the import killed
// half-way and run again (each certificate stored once, the audit trail
// right), and a folder with refused files. Skipped without PostgreSQL.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { X509Certificate } from "node:crypto";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPostgresStore, type PostgresStore } from "../../src/stores/postgres/postgres-store.js";
import { killAll, run, spawnCli } from "../support/cli-harness.js";
import { waitFor } from "../support/harness.js";
import { createServicePki, startService, type RunningService, type ServicePki } from "../support/service-harness.js";
import { createTestDatabase, postgresSkipReason, type TestDatabase } from "../support/postgres.js";
import { generateCertificates } from "../support/many-certificates.js";

const skip = await postgresSkipReason();
const derToPem = (der: Uint8Array) => new X509Certificate(der).toString();

describe.skipIf(skip !== undefined)("certgate import", () => {
  let db: TestDatabase;
  let pki: ServicePki;
  let ders: Uint8Array[];
  let tmp: string;
  let store: PostgresStore;
  let service: RunningService;
  let flags: string[];
  beforeAll(async () => {
    [db, pki, { ders }] = await Promise.all([createTestDatabase(), createServicePki(), generateCertificates(10_000)]);
    tmp = await mkdtemp(join(tmpdir(), "certgate-import-"));
    store = await createPostgresStore({ connectionString: db.url, schema: "import", catchUpIntervalMs: 100 });
    service = await startService(pki, store);
    await writeFile(join(tmp, "admin.pem"), pki.admin.cert);
    await writeFile(join(tmp, "admin-key.pem"), pki.admin.key);
    await writeFile(join(tmp, "reader.pem"), pki.reader.cert);
    await writeFile(join(tmp, "reader-key.pem"), pki.reader.key);
    await writeFile(join(tmp, "ca.pem"), pki.ca.cert);
    flags = ["--store", service.url, "--ca", join(tmp, "ca.pem")];
  });
  afterAll(async () => {
    killAll();
    await service?.close();
    await store?.close();
    await db?.drop();
    if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
  });

  const admin = () => ["--cert", join(tmp, "admin.pem"), "--key", join(tmp, "admin-key.pem")];

  it("resumes an interrupted import: every certificate stored once, the rest counted as skipped", async () => {
    const pem = join(tmp, "fleet.pem");
    await writeFile(pem, ders.map((der) => derToPem(der)).join(""));
    // Interrupted: killed once part of the file is stored.
    const first = spawnCli(["import", "--from-pem", pem, "--batch-size", "500", ...flags, ...admin()]);
    await waitFor(() => store.stats().certificates >= 2000, "part of the import to be stored", 60_000);
    first.kill("SIGKILL");
    await new Promise((resolve) => first.once("exit", resolve));
    const before = store.stats().certificates;
    expect(before).toBeLessThan(10_000);

    const rerun = await run(["import", "--from-pem", pem, "--batch-size", "500", "--json", ...flags, ...admin()]);
    expect(rerun.code, rerun.stderr).toBe(0);
    const counts = JSON.parse(rerun.stdout) as { stored: number; skipped: number; refused: number };
    expect(counts.refused).toBe(0);
    expect(counts.skipped).toBeGreaterThanOrEqual(before - 1000);
    expect(counts.stored + counts.skipped).toBe(10_000);
    await waitFor(() => store.stats().certificates === 10_000, "every certificate stored");

    // A third run stores nothing and says so.
    const again = await run(["import", "--from-pem", pem, ...flags, ...admin()]);
    expect(again.stdout).toBe("certgate import: 0 stored, 10000 skipped (already stored), 0 refused\n");

    // The audit trail: one create per certificate, and batch events that add up.
    const creates = await db.pool.query(
      "SELECT count(*)::int AS n, count(DISTINCT certificate_id)::int AS ids FROM import.audit_events WHERE action = 'create' AND result = 'ok'",
    );
    expect(creates.rows[0]).toEqual({ n: 10_000, ids: 10_000 });
    const batches = await db.pool.query(
      "SELECT reason FROM import.audit_events WHERE action = 'create_batch' AND result = 'ok'",
    );
    const total = batches.rows.reduce((sum: number, r: { reason: string }) => sum + Number.parseInt(r.reason, 10), 0);
    expect(total).toBe(10_000);
  });

  it("imports a folder under the files' names, refusing private keys and junk but storing the rest", async () => {
    const dir = join(tmp, "devices");
    await mkdir(dir);
    for (let i = 0; i < 20; i++) await writeFile(join(dir, `dev-${i}.pem`), derToPem(ders[i]!));
    await writeFile(join(dir, "with-key.pem"), derToPem(ders[20]!) + pki.alice.key);
    await writeFile(join(dir, "junk.der"), new Uint8Array([0x30, 0x03, 1, 2, 3]));
    const result = await run([
      "import",
      "--from-dir",
      dir,
      "--id-from",
      "name",
      "--label",
      "fleet=a",
      ...flags,
      ...admin(),
    ]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/with-key\.pem: the file holds a private key/);
    expect(result.stderr).toMatch(/junk\.der: /);
    expect(result.stdout).toBe("certgate import: 20 stored, 0 skipped (already stored), 2 refused\n");
    for (let i = 0; i < 20; i++) expect((await store.get(`dev-${i}`))?.labels).toEqual({ fleet: "a" });

    // A reader may not import: refused, nothing stored.
    const reader = await run([
      "import",
      "--from-dir",
      dir,
      "--id-from",
      "name",
      ...flags,
      "--cert",
      join(tmp, "reader.pem"),
      "--key",
      join(tmp, "reader-key.pem"),
    ]);
    expect(reader.code).toBe(1);
    expect(reader.stderr).toMatch(/permission|not allowed|admin/i);
  });
});
