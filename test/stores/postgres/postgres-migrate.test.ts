// `certgate migrate` and the start-up checks of `certgate serve --database`.
// Skipped without PostgreSQL.
import { readdirSync } from "node:fs";
import { mkdir, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCertificate } from "../../../src/core/certificate.js";
import { createDirectoryStore } from "../../../src/stores/directory-store.js";
import { createPostgresStore } from "../../../src/stores/postgres/postgres-store.js";
import {
  createCliFixture,
  expectFailure,
  killAll,
  run,
  runHere,
  serveTlsArgs,
  startServe,
  type CliFixture,
} from "../../support/cli-harness.js";
import { generateCertificates } from "../../support/many-certificates.js";
import { createTestDatabase, postgresSkipReason, type TestDatabase } from "../../support/postgres.js";

const skip = await postgresSkipReason();

describe.skipIf(skip !== undefined)("certgate migrate and serve --database", () => {
  let fx: CliFixture;
  let db: TestDatabase;
  beforeAll(async () => {
    [fx, db] = await Promise.all([createCliFixture(), createTestDatabase()]);
  });
  afterAll(async () => {
    killAll();
    await db?.drop();
    await rm(fx.tmp, { recursive: true, force: true });
  });

  it("copies a folder of 1,000 certificates once, keeping labels and create times, and reports what it refused", async () => {
    const folder = join(fx.tmp, "store");
    await mkdir(folder);
    const { ders } = await generateCertificates(1000);
    await Promise.all(ders.map((der, i) => writeFile(join(folder, `c${String(i).padStart(4, "0")}.der`), der)));
    await writeFile(join(folder, "junk.pem"), "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");
    await writeFile(join(folder, "team.pem"), fx.pki.alice.cert + fx.pki.bob.cert);
    const folderStore = await createDirectoryStore({ directory: folder, watch: false, onProblem: () => undefined });
    const labelled = await folderStore.put("labelled", fx.admin.der, { labels: { team: "payments" } });
    await folderStore.close();
    // An id already taken in the database by another certificate.
    const database = await createPostgresStore({ connectionString: db.url });
    await database.put("c0001", fx.reader.der);
    await database.close();

    const first = await run(["migrate", "--from-dir", folder, "--database", db.url]);
    expect(first.stdout).toMatch(/^certgate migrate: 1001 copied, 0 skipped \(already in the database\), 3 refused/);
    expect(first.stderr).toContain("refused junk.pem:");
    expect(first.stderr).toContain("refused team#2: a member of a bundle file");
    expect(first.stderr).toContain("refused c0001: the id is taken in the database by another certificate");
    expect(first.code).toBe(1);

    const second = await runHere(["migrate", "--from-dir", folder, "--database", db.url, "--json"]);
    const report = JSON.parse(second.stdout) as { copied: string[]; skipped: string[]; refused: { id: string }[] };
    expect(report.copied).toEqual([]);
    expect(report.skipped).toHaveLength(1001);
    expect(report.refused.map((r) => r.id).sort()).toEqual(["c0001", "junk.pem", "team#2"]);

    const rows = await db.pool.query<{ n: string }>("SELECT count(*) AS n FROM certgate.certificates");
    expect(Number(rows.rows[0]!.n)).toBe(1002);
    // One audit event per certificate copied, in the copy's transaction; none for those skipped.
    const audited = await db.pool.query<{ certificate_id: string; sha256: string }>(
      "SELECT certificate_id, sha256 FROM certgate.audit_events WHERE actor_subject = 'migrate' AND action = 'create' AND result = 'ok' AND actor_sha256 = ''",
    );
    expect(audited.rows).toHaveLength(1001);
    expect(new Set(audited.rows.map((r) => r.certificate_id)).size).toBe(1001);
    expect(audited.rows.find((r) => r.certificate_id === "labelled")?.sha256).toBe(labelled.sha256);
    const check = await createPostgresStore({ connectionString: db.url });
    try {
      const copied = await check.get("labelled");
      expect(copied?.labels).toEqual({ team: "payments" });
      expect(copied?.createTime.getTime()).toBe(labelled.createTime.getTime());
      expect((await check.get("c0999"))?.der).toEqual(Buffer.from(ders[999]!));
    } finally {
      await check.close();
    }
  });

  it("refuses --database with --data-dir, a URL that is not postgres://, and an unreachable database, naming the problem", async () => {
    expectFailure(
      await runHere(["serve", "--database", db.url, "--data-dir", "x"], {}, fx.tmp),
      2,
      /--database and --data-dir are mutually exclusive/,
    );
    expectFailure(
      await runHere(["serve", "--data-dir", "x"], { CERTGATE_DATABASE_URL: db.url }, fx.tmp),
      2,
      /CERTGATE_DATABASE_URL and --data-dir are mutually exclusive/,
    );
    expectFailure(
      await runHere(["serve", "--database", "mysql://db/x"], {}, fx.tmp),
      2,
      /--database mysql:\/\/db\/x: expected a postgres:\/\/ URL/,
    );
    const tls = [...serveTlsArgs(fx), "--admin", "00".repeat(32)];
    expectFailure(
      await runHere(["serve", "--database", "postgres://certgate:secret@127.0.0.1:1/none", ...tls], {}, fx.tmp),
      1,
      /^certgate: --database postgres:\/\/certgate:\*\*\*@127\.0\.0\.1:1\/none: cannot open the PostgreSQL store/,
    );
    expectFailure(await runHere(["migrate", "--database", db.url], {}, fx.tmp), 2, /--from-dir is required/);
  });

  it("starts two replicas at once in development mode on one PKI, never removing another start's staging folder", async () => {
    const cwd = join(fx.tmp, "dev-race");
    const dataDir = join(cwd, ".certgate", "store");
    await mkdir(dataDir, { recursive: true });
    // Another start's work in progress, and a crashed start's leftover.
    const fresh = join(dataDir, ".dev-0123456789ab.tmp");
    const stale = join(dataDir, ".dev-ba9876543210.tmp");
    await mkdir(fresh);
    await mkdir(stale);
    const old = new Date(Date.now() - 3600_000);
    await utimes(stale, old, old);
    const [a, b] = await Promise.all([
      startServe(["--database", db.url], {}, cwd),
      startServe(["--database", db.url], {}, cwd),
    ]);
    try {
      expect(a.output().stdout).toMatch(/Development mode: certificates (created|reused)/);
      expect(b.output().stdout).toMatch(/Development mode: certificates (created|reused)/);
      expect([a, b].filter((s) => /certificates created/.test(s.output().stdout)).length).toBeLessThanOrEqual(1);
      expect(await stat(fresh).then(() => true)).toBe(true);
      expect(
        await stat(stale).then(
          () => true,
          () => false,
        ),
      ).toBe(false);
      // One PKI: both replicas serve the same server certificate's CA.
      const ca = await readFile(join(dataDir, "dev", "ca.pem"), "utf8");
      expect(parseCertificate(ca).isCA).toBe(true);
      expect(readdirSync(dataDir).filter((n) => n.endsWith(".tmp"))).toEqual([".dev-0123456789ab.tmp"]);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it("never prints a database password, in the user information, the query or PGPASSWORD", async () => {
    const secret = "hunter2secret";
    const unreachable = [
      `postgres://certgate:${secret}@127.0.0.1:1/none`,
      `postgres://certgate@127.0.0.1:1/none?password=${secret}&sslmode=disable`,
    ];
    const tls = [...serveTlsArgs(fx), "--admin", "00".repeat(32)];
    for (const url of unreachable) {
      for (const args of [
        ["serve", "--database", url, ...tls],
        ["migrate", "--from-dir", fx.tmp, "--database", url],
      ]) {
        const result = await runHere(args, { PGPASSWORD: secret }, fx.tmp);
        expect(result.code).toBe(1);
        expect(result.stderr).toMatch(/cannot open the PostgreSQL store/);
        expect(result.stderr + result.stdout).not.toContain(secret);
        expect(result.stderr).toContain("***");
      }
    }
    // A server that starts (trust authentication ignores the password) prints its URL redacted.
    const url = new URL(db.url);
    url.searchParams.set("password", secret);
    const serve = await startServe(["--database", url.toString(), ...tls]);
    try {
      expect(serve.output().stdout).toMatch(/database postgres:\/\/\S*password=\*\*\*/);
      expect(serve.output().stdout + serve.output().stderr).not.toContain(secret);
    } finally {
      await serve.stop();
    }
  });
});
