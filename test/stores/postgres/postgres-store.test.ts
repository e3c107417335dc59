// The PostgreSQL store against a real server: the writable store contract,
// migrations under concurrent start-up, concurrent writers, lost
// connections. Skipped without PostgreSQL (see test/support/postgres.ts).
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code } from "@connectrpc/connect";
import { parseCertificate } from "../../../src/core/certificate.js";
import { parseUpload } from "../../../src/service/upload.js";
import { nonDerVariants } from "../../support/non-der-certificates.js";
import { createDevCa, issueDevCertificate, type IssuedCertificate } from "../../../src/dev-certificates.js";
import { createPostgresStore, type PostgresStore } from "../../../src/stores/postgres/postgres-store.js";
import { waitFor } from "../../support/harness.js";
import { codeOf } from "../../support/service-harness.js";
import {
  createTestDatabase,
  postgresSkipReason,
  terminateConnections,
  type TestDatabase,
} from "../../support/postgres.js";
import { storeContract } from "../../support/store-contract.js";
import { startTcpProxy } from "../../support/tcp-proxy.js";

const skip = await postgresSkipReason();
const repo = fileURLToPath(new URL("../../..", import.meta.url));
const signal = new AbortController().signal;

describe("the package root", () => {
  it("does not load pg until createPostgresStore is called", () => {
    const script = `
      import { createRequire } from "node:module";
      const root = await import(${JSON.stringify(pathToFileURL(join(repo, "src", "index.ts")).href)});
      const loaded = () => Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes("/node_modules/pg/"));
      const before = loaded();
      await root.createPostgresStore({ connectionString: "postgres://nobody@127.0.0.1:1/none" }).catch(() => undefined);
      console.log(JSON.stringify({ before, after: loaded() }));`;
    const result = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      cwd: repo,
      encoding: "utf8",
    });
    expect(JSON.parse(result.stdout.trim().split("\n").pop()!)).toEqual({ before: false, after: true });
  });
});

describe.skipIf(skip !== undefined)("createPostgresStore()", () => {
  let db: TestDatabase;
  let schemas = 0;
  const open: PostgresStore[] = [];
  let ca: IssuedCertificate;
  let certs: IssuedCertificate[];
  beforeAll(async () => {
    db = await createTestDatabase();
    ca = await createDevCa();
    certs = await Promise.all(
      Array.from({ length: 4 }, (_, i) => issueDevCertificate(ca, { commonName: `client-${i}` })),
    );
  });
  afterAll(async () => {
    await Promise.all(open.map((s) => s.close()));
    await db?.drop();
  });

  async function openStore(
    schema: string,
    options: Partial<Parameters<typeof createPostgresStore>[0]> = {},
  ): Promise<PostgresStore> {
    const store = await createPostgresStore({ connectionString: db.url, schema, ...options });
    open.push(store);
    return store;
  }

  describe("the writable store contract", () => {
    storeContract(async (initial = []) => {
      const store = await openStore(`contract_${++schemas}`);
      for (const der of initial) await store.put(parseCertificate(der).sha256, der);
      return store;
    });
  });

  it("migrates once when several replicas start at once, and refuses a newer schema", async () => {
    const stores = await Promise.all(Array.from({ length: 4 }, () => openStore("race")));
    const versions = await db.pool.query("SELECT version FROM race.schema_migrations ORDER BY version");
    expect(versions.rows).toEqual([{ version: 1 }, { version: 2 }, { version: 3 }]);
    await stores[0]!.put("a", certs[0]!.der);
    await waitFor(() => stores.every((s) => s.stats().certificates === 1), "every replica has the certificate");
    await db.pool.query("INSERT INTO race.schema_migrations (version, name) VALUES (99, 'from the future')");
    await expect(createPostgresStore({ connectionString: db.url, schema: "race" })).rejects.toThrow(
      /version 99, newer than this certgate knows/,
    );
    await expect(createPostgresStore({ connectionString: "postgres://nobody@127.0.0.1:1/none" })).rejects.toThrow(
      /cannot open the PostgreSQL store/,
    );
  });

  it("lets the database decide between concurrent writers: the final state equals the log", async () => {
    const [a, b] = [await openStore("writers"), await openStore("writers")];
    const ids = ["same", "same", "same", "same", "same", "x1", "x2", "x3", "x4", "x5"];
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => {
        const store = i % 2 === 0 ? a : b;
        const id = ids[i % ids.length]!;
        return i < 10 ? codeOf(store.put(id, certs[i % certs.length]!.der)) : codeOf(store.delete(ids[i - 10]!));
      }),
    );
    expect(results.every((r) => r === "ok" || r === Code.AlreadyExists || r === Code.NotFound)).toBe(true);
    // Replay the log: it must give exactly what the table holds.
    const log = await db.pool.query<{ id: string; kind: string }>(
      "SELECT id, kind FROM writers.changes ORDER BY revision",
    );
    const replayed = new Set<string>();
    for (const row of log.rows) {
      if (row.kind === "put") {
        expect(replayed.has(row.id)).toBe(false);
        replayed.add(row.id);
      } else {
        expect(replayed.delete(row.id)).toBe(true);
      }
    }
    const table = await db.pool.query<{ id: string }>("SELECT id FROM writers.certificates ORDER BY id");
    expect(table.rows.map((r) => r.id)).toEqual([...replayed].sort());
    await waitFor(
      () =>
        [a, b].every(
          (s) => s.stats().revision === Number(a.stats().revision) && s.stats().certificates === replayed.size,
        ),
      "both replicas reach the log's end",
    );
    expect((await a.list({ limit: 100 })).map((c) => c.id)).toEqual([...replayed].sort());
    expect((await b.list({ limit: 100 })).map((c) => c.id)).toEqual([...replayed].sort());
  });

  it("runs on a pg.Pool it is given, and leaves it open when closed", async () => {
    const store = await createPostgresStore({ pool: db.pool, schema: "given_pool" });
    await store.put("p", certs[0]!.der);
    await store.close();
    const rows = await db.pool.query("SELECT id FROM given_pool.certificates");
    expect(rows.rows).toEqual([{ id: "p" }]);
    await expect(createPostgresStore({ pool: db.pool, connectionString: db.url })).rejects.toThrow(
      /exactly one of options.pool and options.connectionString/,
    );
  });

  it("keeps reads on a readPool of its own beside a given pool, and refuses deadlines that are not durations", async () => {
    const reads = new pg.Pool({ connectionString: db.url, max: 2 });
    reads.on("error", () => undefined);
    try {
      const store = await createPostgresStore({ pool: db.pool, readPool: reads, schema: "read_pool" });
      await store.put("r", certs[0]!.der);
      expect((await store.audit.list({ limit: 10 })).events).toEqual([]);
      expect(reads.totalCount).toBeGreaterThan(0);
      await store.close();
    } finally {
      await reads.end();
    }
    await expect(createPostgresStore({ connectionString: db.url, readPool: db.pool })).rejects.toThrow(
      /options.readPool goes with options.pool/,
    );
    for (const name of ["lockTimeoutMs", "queryTimeoutMs", "changeReadTimeoutMs", "idleInTransactionTimeoutMs"]) {
      await expect(createPostgresStore({ connectionString: db.url, [name]: 0 })).rejects.toThrow(
        new RegExp(`options.${name} must be an integer`),
      );
    }
  });

  it("stores through put() and putAll() only what a single upload takes: a canonical certificate, not its non-DER variants", async () => {
    const store = await openStore("non_der");
    await store.put("canonical", certs[0]!.der);
    expect((await store.get("canonical"))?.sha256).toBe(parseCertificate(certs[0]!.der).sha256);
    for (const [name, der] of Object.entries(nonDerVariants(certs[1]!.der))) {
      expect(parseUpload(der, 65536).kind, name).toBe("invalid");
      await expect(store.put(`variant`, der), name).rejects.toMatchObject({ code: Code.InvalidArgument });
      const batch = await store.putAll!([
        { id: "other", der: certs[2]!.der, labels: {} },
        { id: "variant", der, labels: {} },
      ]);
      expect(batch.kind === "refused" ? batch.items.map((i) => i.id) : batch.kind, name).toEqual(["variant"]);
    }
    expect((await store.list({ limit: 10 })).map((c) => c.id)).toEqual(["canonical"]);
  });

  it("admits the same certificate under two ids until both are deleted", async () => {
    const store = await openStore("twice");
    const certificate = parseCertificate(certs[1]!.der);
    await Promise.all([store.put("one", certs[1]!.der), store.put("two", certs[1]!.der)]);
    await store.delete("one");
    expect((await store.lookup(certificate, signal)).kind).toBe("admitted");
    await store.delete("two");
    expect(await store.lookup(certificate, signal)).toEqual({ kind: "refused", reason: "not_allowed" });
  });

  it("hears changes made by another replica, and resumes after its connections are terminated", async () => {
    const a = await openStore("terminate");
    const b = await openStore("terminate", { catchUpIntervalMs: 60_000 });
    const certificate = parseCertificate(certs[2]!.der);
    await a.put("c", certs[2]!.der);
    // Within the minute of the timer: the notification brought it.
    await waitFor(async () => (await b.lookup(certificate, signal)).kind === "admitted", "b hears the upload");
    expect(await terminateConnections(db.name)).toBeGreaterThan(0);
    await a.delete("c");
    await waitFor(
      async () => (await b.lookup(certificate, signal)).kind === "refused",
      "b hears the deletion after reconnecting",
    );
    expect(b.state).toBe("connected");
  });

  it("fails closed when the database is unreachable, refuses writes with Unavailable, and recovers by itself", async () => {
    const proxy = await startTcpProxy(Number(new URL(db.url).port || 5432), new URL(db.url).hostname);
    const url = new URL(db.url);
    url.host = `127.0.0.1:${proxy.port}`;
    const states: string[] = [];
    try {
      const store = await openStore("cut", {
        connectionString: url.toString(),
        catchUpIntervalMs: 50,
        onStateChange: (s) => states.push(s),
      });
      const certificate = parseCertificate(certs[3]!.der);
      await store.put("d", certs[3]!.der);
      expect((await store.lookup(certificate, signal)).kind).toBe("admitted");
      proxy.cut();
      await waitFor(() => store.state === "unavailable", "the store sees the database go");
      expect((await store.lookup(certificate, signal)).kind).toBe("error");
      expect(await codeOf(store.put("e", certs[0]!.der))).toBe(Code.Unavailable);
      expect(await codeOf(store.delete("d"))).toBe(Code.Unavailable);
      expect(await codeOf(store.list({ limit: 1 }))).toBe(Code.Unavailable);
      proxy.restore();
      await waitFor(() => store.state === "connected", "the store reconnects by itself");
      expect((await store.lookup(certificate, signal)).kind).toBe("admitted");
      expect(await codeOf(store.put("e", certs[0]!.der))).toBe("ok");
      expect(states).toEqual(["unavailable", "connected"]);
    } finally {
      await proxy.close();
    }
  });

  it("serves its last copy within maxStaleMs when the database goes, then fails closed", async () => {
    const proxy = await startTcpProxy(Number(new URL(db.url).port || 5432), new URL(db.url).hostname);
    const url = new URL(db.url);
    url.host = `127.0.0.1:${proxy.port}`;
    let t = 1_000_000;
    try {
      const store = await openStore("stale", {
        connectionString: url.toString(),
        catchUpIntervalMs: 50,
        maxStaleMs: 60_000,
        clock: () => t,
      });
      const certificate = parseCertificate(certs[0]!.der);
      await store.put("s", certs[0]!.der);
      proxy.cut();
      await waitFor(() => store.state === "stale", "the store goes stale");
      expect(await store.lookup(certificate, signal)).toMatchObject({ kind: "admitted", expiresAt: 1_060_000 });
      expect(await codeOf(store.put("t", certs[1]!.der))).toBe(Code.Unavailable);
      t += 60_001;
      expect((await store.lookup(certificate, signal)).kind).toBe("error");
    } finally {
      await proxy.close();
    }
  });
});
