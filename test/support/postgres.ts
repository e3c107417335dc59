// PostgreSQL for tests: each test file gets a database of its own with a
// random name, dropped at the end. Without a reachable server the tests are
// skipped (saying why and how to enable them), except under CI=true, where
// a missing database fails the run.
import { randomBytes } from "node:crypto";
import pg from "pg";

/** The admin connection: `CERTGATE_TEST_DATABASE_URL`, by default the local `test` database. */
export const adminUrl = process.env.CERTGATE_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** A database made for one test file. */
export interface TestDatabase {
  /** Its URL. */
  readonly url: string;
  readonly name: string;
  /** A pool on it, for checks and for `pg_terminate_backend`; ended by `drop()`. */
  readonly pool: pg.Pool;
  /** Ends every connection to it and drops it. */
  drop(): Promise<void>;
}

/**
 * postgresSkipReason resolves to undefined when the server answers, or to
 * why the PostgreSQL tests are skipped. Under `CI=true` it throws instead.
 */
export async function postgresSkipReason(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query("SELECT 1");
    return undefined;
  } catch (error) {
    const reason = `PostgreSQL tests skipped: cannot reach ${redact(adminUrl)} (${(error as Error).message}). Start PostgreSQL or set CERTGATE_TEST_DATABASE_URL to an admin connection URL to run them.`;
    if (process.env.CI === "true") throw new Error(`CI=true needs PostgreSQL: ${reason}`);
    console.warn(reason);
    return reason;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * createTestDatabase creates a database with a random name.
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `certgate_test_${randomBytes(6).toString("hex")}`;
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const pool = new pg.Pool({ connectionString: url.toString(), max: 4 });
  pool.on("error", () => undefined);
  return {
    url: url.toString(),
    name,
    pool,
    async drop() {
      await pool.end().catch(() => undefined);
      await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

/**
 * terminateConnections ends every backend of `database` whose application
 * name is `application` (the store's pool says `certgate`), as a database
 * restart or a failover would; resolves with how many it ended.
 */
export async function terminateConnections(database: string, application = "certgate"): Promise<number> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const result = await client.query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2 AND pid <> pg_backend_pid()",
      [database, application],
    );
    return result.rowCount ?? 0;
  } finally {
    await client.end();
  }
}

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== "") u.password = "***";
    return u.toString();
  } catch {
    return "CERTGATE_TEST_DATABASE_URL";
  }
}
