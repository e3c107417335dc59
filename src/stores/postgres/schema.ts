import type { ClientBase, QueryConfig } from "pg";

// The deadline of a migration's lock wait and statements, in milliseconds.
const migrationTimeoutMs = 120_000;

/**
 * Migration is one version of the store's schema. Migrations are applied in
 * order, each once, and never edited once released: a change is a new
 * version.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  /** The statements, given the quoted schema name. */
  sql(schema: string): string;
}

/**
 * migrations are the versions of the schema this certgate knows.
 */
export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: "certificates, change log, revision sequence",
    sql: (s) => `
      CREATE TABLE ${s}.store_info (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        epoch text NOT NULL,
        pruned_through bigint NOT NULL DEFAULT 0
      );
      INSERT INTO ${s}.store_info (epoch) VALUES (gen_random_uuid()::text);
      CREATE SEQUENCE ${s}.revision AS bigint;
      CREATE TABLE ${s}.certificates (
        id text COLLATE "C" PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$'),
        der bytea NOT NULL CHECK (octet_length(der) BETWEEN 1 AND 1048576),
        sha1 text NOT NULL CHECK (sha1 ~ '^[0-9A-F]{40}$'),
        sha256 text NOT NULL CHECK (sha256 ~ '^[0-9A-F]{64}$'),
        labels jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(labels) = 'object'),
        create_time timestamptz NOT NULL,
        revision bigint NOT NULL
      );
      CREATE INDEX certificates_sha256 ON ${s}.certificates (sha256);
      CREATE TABLE ${s}.changes (
        revision bigint PRIMARY KEY,
        id text COLLATE "C" NOT NULL,
        kind text NOT NULL CHECK (kind IN ('put', 'delete')),
        change_time timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX changes_change_time ON ${s}.changes (change_time);
    `,
  },
  {
    version: 2,
    name: "audit trail",
    // Append only: a trigger refuses UPDATE and DELETE of audit rows
    // (an operator archives with TRUNCATE, see docs/audit.md).
    sql: (s) => `
      CREATE TABLE ${s}.audit_events (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        event_time timestamptz NOT NULL,
        action text NOT NULL CHECK (action IN ('create', 'delete')),
        result text NOT NULL CHECK (result IN ('ok', 'refused', 'failed', 'suppressed')),
        code text NOT NULL DEFAULT '',
        reason text NOT NULL DEFAULT '' CHECK (length(reason) <= 1024),
        actor_subject text NOT NULL DEFAULT '' CHECK (length(actor_subject) <= 4096),
        actor_sha256 text NOT NULL DEFAULT '' CHECK (actor_sha256 ~ '^([0-9A-F]{64})?$'),
        certificate_id text COLLATE "C" NOT NULL DEFAULT '' CHECK (length(certificate_id) <= 256),
        sha256 text NOT NULL DEFAULT '' CHECK (sha256 ~ '^([0-9A-F]{64})?$')
      );
      CREATE INDEX audit_events_certificate ON ${s}.audit_events (certificate_id, seq);
      CREATE INDEX audit_events_time ON ${s}.audit_events (event_time);
      CREATE FUNCTION ${s}.audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION 'certgate audit_events is append-only';
        END;
      $$;
      CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON ${s}.audit_events
        FOR EACH ROW EXECUTE FUNCTION ${s}.audit_events_append_only();
    `,
  },
  {
    version: 3,
    name: "listings by index: not_after and labels; create_batch audit events",
    // Listings page by id (the primary key); expires_before uses the
    // not_after index, a label filter the GIN index. Rows stored before this
    // version keep a null not_after: listings by expiry read those from the DER.
    sql: (s) => `
      ALTER TABLE ${s}.certificates ADD COLUMN not_after timestamptz;
      CREATE INDEX certificates_not_after ON ${s}.certificates (not_after, id);
      CREATE INDEX certificates_labels ON ${s}.certificates USING gin (labels jsonb_path_ops);
      ALTER TABLE ${s}.audit_events DROP CONSTRAINT audit_events_action_check;
      ALTER TABLE ${s}.audit_events ADD CONSTRAINT audit_events_action_check
        CHECK (action IN ('create', 'delete', 'create_batch'));
    `,
  },
];

/** The first key of certgate's advisory locks; the second is the schema's hash. */
export const lockClass = 1_667_591_000;
/** Advisory lock kinds, added to `lockClass`. */
export const migrationLock = 0;
export const writeLock = 1;

/**
 * migrate brings `schema` to the newest version in one transaction, under a
 * transaction-level advisory lock: replicas starting at once wait for each
 * other, and the second finds the work done. A schema newer than this
 * certgate fails, naming both versions. Returns the version reached.
 */
export async function migrate(client: ClientBase, schema: string, quoted: string): Promise<number> {
  // A migration may rewrite a large table, and replicas starting at once
  // wait for the first one's: it gets deadlines of its own, longer than a
  // write's (which the pool's sessions default to).
  const query = <R extends object = Record<string, unknown>>(text: string, values?: unknown[]) =>
    client.query<R & Record<string, unknown>>({
      text,
      values,
      query_timeout: migrationTimeoutMs + 5000,
    } as QueryConfig);
  await query(
    `BEGIN; SET LOCAL lock_timeout = ${migrationTimeoutMs}; SET LOCAL statement_timeout = ${migrationTimeoutMs}; SET LOCAL idle_in_transaction_session_timeout = ${migrationTimeoutMs}`,
  );
  try {
    await query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [lockClass + migrationLock, schema]);
    await query(`CREATE SCHEMA IF NOT EXISTS ${quoted}`);
    await query(
      `CREATE TABLE IF NOT EXISTS ${quoted}.schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const applied = new Set(
      (await query<{ version: number }>(`SELECT version FROM ${quoted}.schema_migrations`)).rows.map((r) => r.version),
    );
    const known = migrations[migrations.length - 1]!.version;
    const newest = Math.max(0, ...applied);
    if (newest > known) {
      throw new Error(
        `the database schema ${schema} is at version ${newest}, newer than this certgate knows (${known}): upgrade certgate`,
      );
    }
    for (const migration of migrations) {
      if (applied.has(migration.version)) continue;
      await query(migration.sql(quoted));
      await query(`INSERT INTO ${quoted}.schema_migrations (version, name) VALUES ($1, $2)`, [
        migration.version,
        migration.name,
      ]);
    }
    await query("COMMIT");
    return known;
  } catch (error) {
    await query("ROLLBACK").catch(() => undefined);
    throw error;
  }
}
