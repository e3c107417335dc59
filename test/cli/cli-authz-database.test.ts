// `certgate authz --database`: the PostgreSQL store of `certgate serve
// --database`, deletions included.
import * as http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPostgresStore, type PostgresStore } from "../../src/stores/postgres/postgres-store.js";
import { killAll, spawnCli } from "../support/cli-harness.js";
import { createTestPki, waitFor, type TestPki } from "../support/harness.js";
import { createTestDatabase, postgresSkipReason, type TestDatabase } from "../support/postgres.js";

const skip = await postgresSkipReason();

function status(port: number, pem: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(
        { host: "127.0.0.1", port, path: "/auth", agent: false, headers: { "x-client-cert": encodeURIComponent(pem) } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      )
      .on("error", reject);
  });
}

describe.skipIf(skip !== undefined)("certgate authz --database", () => {
  let db: TestDatabase;
  let pki: TestPki;
  let store: PostgresStore;
  beforeAll(async () => {
    db = await createTestDatabase();
    pki = await createTestPki();
    store = await createPostgresStore({ connectionString: db.url });
    await store.put("alice", pki.alice.der, { labels: { team: "payments" } });
  });
  afterAll(async () => {
    killAll();
    await store?.close();
    await db?.drop();
  });

  it("admits what the database holds and refuses once it is deleted there", async () => {
    const child = spawnCli([
      "authz",
      "--listen",
      "127.0.0.1:0",
      "--trusted-proxy",
      "127.0.0.1",
      "--forwarded",
      "nginx:X-Client-Cert",
      "--database",
      db.url,
    ]);
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    await waitFor(() => /listening on http:\/\/\S+/.test(stdout) || child.exitCode !== null, "authz to listen", 30_000);
    const port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stdout)?.[1]);
    expect(port, stderr).toBeGreaterThan(0);
    expect(stdout).toMatch(/deciding with database postgres:/);
    expect(await status(port, pki.alice.cert)).toBe(200);
    expect(await status(port, pki.bob.cert)).toBe(401);
    await store.delete("alice");
    await waitFor(async () => (await status(port, pki.alice.cert)) === 401, "the deletion to reach authz");
    child.kill("SIGTERM");
    expect(await exit).toBe(0);
  }, 60_000);
});
