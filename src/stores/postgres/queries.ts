import type { ClientBase, Pool, PoolClient, QueryConfig } from "pg";
import type { LoggedChange, StoredCertificate } from "../../core/store.js";
import { okAuditRecord, type AuditActor, type AuditRecord } from "../../core/audit.js";
import { readValidity } from "../../core/certificate-validity.js";
import { insertAuditRow } from "./audit-queries.js";
import { lockClass, writeLock } from "./schema.js";
import { isConnectionError, isTimeout } from "./errors.js";
import type { Deadlines } from "./postgres-store-options.js";

// The SQL of the PostgreSQL store. Every write takes the store's write lock
// (a transaction-level advisory lock) before it draws its revision from the
// sequence, so revisions commit in order: a reader that sees revision r has
// seen every revision below r, and a change log read from r never misses one
// that commits later with a smaller number.

/** A row of the certificates table. */
interface CertificateRow {
  id: string;
  der: Buffer;
  sha1: string;
  sha256: string;
  labels: Record<string, string>;
  create_time: Date;
  not_after?: Date | null;
}

/**
 * Tables names the store's objects in one schema.
 */
export interface Tables {
  /** The schema name, unquoted (for lock keys and the channel name). */
  readonly schema: string;
  /** The schema name, quoted for SQL. */
  readonly quoted: string;
  /** The NOTIFY channel. */
  readonly channel: string;
  /** The time limits of the store's statements. */
  readonly deadlines: Deadlines;
}

/**
 * Db is a connection whose every statement has a client-side deadline.
 */
export interface Db {
  query<R extends object = Record<string, unknown>>(text: string, values?: unknown[]): Promise<{ rows: R[] }>;
}

/**
 * timed gives `client` a client-side deadline of `ms` on each statement:
 * past it the statement fails with "Query read timeout", and a connection
 * released with that error is destroyed, since a network that stopped
 * answering never ends it.
 */
export function timed(client: ClientBase | Pool, ms: number): Db {
  return {
    query: <R extends object>(text: string, values?: unknown[]) =>
      client.query<R & Record<string, unknown>>(deadlined(text, values, ms)),
  };
}

// A statement with pg's client-side `query_timeout` (missing from @types/pg).
function deadlined(text: string, values: unknown[] | undefined, ms: number): QueryConfig {
  return { text, values, query_timeout: ms } as QueryConfig;
}

/**
 * storedOf turns a row into a frozen `StoredCertificate`.
 */
export function storedOf(row: CertificateRow): StoredCertificate {
  return Object.freeze({
    id: row.id,
    der: row.der,
    sha1: row.sha1,
    sha256: row.sha256,
    labels: Object.freeze({ ...row.labels }),
    createTime: row.create_time,
    ...(row.not_after instanceof Date ? { notAfter: row.not_after } : {}),
  });
}

/**
 * Snapshot is the revision and epoch the store was read at.
 */
export interface Snapshot {
  readonly epoch: string;
  readonly head: number;
}

/** A certificate as the replica's copy keeps it. */
export interface IndexRow {
  readonly id: string;
  readonly sha256: string;
  readonly labels: Record<string, string>;
}

// Rows per page of a snapshot read: big enough that the round trips do not
// count, small enough that a page is a few MB at most.
const snapshotPage = 10_000;

/**
 * loadSnapshot reads every certificate's id, SHA-256 thumbprint and labels
 * (never the DER) and the revision they are at, in one repeatable-read
 * transaction, page by page in id order: each page goes to `onPage` and is
 * dropped, so the whole store is never held at once.
 */
export async function loadSnapshot(
  pool: Pool,
  t: Tables,
  onPage: (rows: readonly IndexRow[]) => void,
): Promise<Snapshot> {
  const ms = t.deadlines.snapshotTimeoutMs;
  const client = await begin(
    pool,
    `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL statement_timeout = ${ms}`,
    ms,
  );
  let broken: unknown;
  try {
    const db = timed(client, ms);
    const info = await db.query<{ epoch: string; head: string }>(
      `SELECT epoch, GREATEST(pruned_through, (SELECT coalesce(max(revision), 0) FROM ${t.quoted}.changes)) AS head FROM ${t.quoted}.store_info`,
    );
    let after: string | null = null;
    for (;;) {
      const rows: { rows: IndexRow[] } = await db.query<IndexRow & Record<string, unknown>>(
        `SELECT id, sha256, labels FROM ${t.quoted}.certificates
          WHERE $1::text IS NULL OR id > $1 ORDER BY id LIMIT ${snapshotPage}`,
        [after],
      );
      if (rows.rows.length > 0) onPage(rows.rows);
      if (rows.rows.length < snapshotPage) break;
      after = rows.rows[rows.rows.length - 1]!.id;
    }
    await db.query("COMMIT");
    const first = info.rows[0];
    if (first === undefined) throw new Error(`the schema ${t.schema} has no store_info row`);
    return { epoch: first.epoch, head: Number(first.head) };
  } catch (error) {
    broken = error;
    throw error;
  } finally {
    client.release(broken instanceof Error ? broken : undefined);
  }
}

const columns = "id, der, sha1, sha256, labels, create_time, not_after";
// The same without the DER, for watch snapshots that do not send it.
const columnsWithoutDer = "id, ''::bytea AS der, sha1, sha256, labels, create_time, not_after";

/**
 * selectCertificate reads one stored certificate by id, or by SHA-256 thumbprint.
 */
export async function selectCertificate(
  pool: Pool,
  t: Tables,
  by: "id" | "sha256",
  value: string,
): Promise<StoredCertificate | undefined> {
  const result = await timed(pool, t.deadlines.queryTimeoutMs).query<CertificateRow>(
    `SELECT ${columns} FROM ${t.quoted}.certificates WHERE ${by} = $1 ORDER BY id LIMIT 1`,
    [value],
  );
  const row = result.rows[0];
  return row === undefined ? undefined : storedOf(row);
}

/**
 * selectPage reads at most `limit` certificates after `after` in id order
 * (keyset paging on the primary key: the same cost at any position), only
 * those expiring before `expiresBefore` (or of unknown expiry) and carrying
 * every one of `labels`, which the not_after and labels indexes serve.
 */
export async function selectPage(
  pool: Pool,
  t: Tables,
  query: {
    after?: string;
    limit: number;
    expiresBefore?: Date;
    labels?: Readonly<Record<string, string>>;
    withoutDer?: boolean;
  },
): Promise<StoredCertificate[]> {
  const where: string[] = [];
  const values: unknown[] = [];
  if (query.after !== undefined) {
    values.push(query.after);
    where.push(`id > $${values.length}`);
  }
  if (query.expiresBefore !== undefined) {
    values.push(query.expiresBefore);
    where.push(`(not_after < $${values.length} OR not_after IS NULL)`);
  }
  if (query.labels !== undefined && Object.keys(query.labels).length > 0) {
    values.push(JSON.stringify(query.labels));
    where.push(`labels @> $${values.length}::jsonb`);
  }
  values.push(query.limit);
  const result = await timed(pool, t.deadlines.queryTimeoutMs).query<CertificateRow>(
    `SELECT ${query.withoutDer === true ? columnsWithoutDer : columns} FROM ${t.quoted}.certificates
      ${where.length === 0 ? "" : `WHERE ${where.join(" AND ")}`}
      ORDER BY id LIMIT $${values.length}`,
    values,
  );
  return result.rows.map(storedOf);
}

/**
 * ChangeRead is a page of the change log.
 */
export interface ChangeRead {
  /** The revision through which the log was pruned. */
  readonly prunedThrough: number;
  readonly changes: LoggedChange[];
}

/**
 * readChanges reads at most `limit` revisions after `after` (through
 * `until`, when given), each with the certificate as it is now: a put whose
 * certificate is gone again reads as a deletion (the later deletion follows).
 */
export async function readChanges(
  db: Pool | ClientBase,
  t: Tables,
  after: number,
  limit: number,
  until?: number,
): Promise<ChangeRead> {
  // Shaped for a plan that stays an index range scan and primary-key
  // look-ups even before the tables were ever analyzed (a hash join over
  // all certificates, and JIT, cost tens of milliseconds).
  const timedDb = timed(db, t.deadlines.changeReadTimeoutMs);
  const result = await timedDb.query<
    {
      pruned_through: string;
      revision: string;
      change_id: string;
      kind: string;
    } & Partial<CertificateRow>
  >(
    `WITH c AS MATERIALIZED (
       SELECT revision, id, kind FROM ${t.quoted}.changes
        WHERE revision > $1 AND revision <= $3 ORDER BY revision LIMIT $2
     )
     SELECT (SELECT pruned_through FROM ${t.quoted}.store_info LIMIT 1) AS pruned_through,
            c.revision, c.id AS change_id, c.kind, k.id, k.der, k.sha1, k.sha256, k.labels, k.create_time, k.not_after
       FROM c LEFT JOIN LATERAL (
         SELECT * FROM ${t.quoted}.certificates k WHERE k.id = c.id AND c.kind = 'put'
       ) k ON true
      ORDER BY c.revision`,
    [after, limit, until ?? Number.MAX_SAFE_INTEGER],
  );
  const changes: LoggedChange[] = [];
  let prunedThrough = 0;
  for (const row of result.rows) {
    prunedThrough = Number(row.pruned_through);
    const revision = Number(row.revision);
    if (row.kind === "put" && row.id !== undefined && row.id !== null) {
      changes.push({ revision, upserted: [storedOf(row as CertificateRow)], deleted: [] });
    } else {
      changes.push({ revision, upserted: [], deleted: [row.change_id] });
    }
  }
  if (result.rows.length === 0) {
    const info = await timedDb.query<{ pruned_through: string }>(
      `SELECT pruned_through FROM ${t.quoted}.store_info LIMIT 1`,
    );
    prunedThrough = Number(info.rows[0]?.pruned_through ?? 0);
  }
  return { prunedThrough, changes };
}

/**
 * insertCertificate stores one certificate and logs it; resolves with its
 * revision, or `exists` when the id is taken (nothing is written then).
 */
export function insertCertificate(
  pool: Pool,
  t: Tables,
  stored: StoredCertificate,
  audit?: AuditRecord,
): Promise<number | "exists"> {
  return write(pool, t, async (client) => {
    const result = await client.query<{ revision: string }>(
      `WITH ins AS (
         INSERT INTO ${t.quoted}.certificates (id, der, sha1, sha256, labels, create_time, not_after, revision)
         VALUES ($1, $2, $3, $4, $5, $6, $8, nextval('${t.quoted}.revision'))
         ON CONFLICT (id) DO NOTHING RETURNING revision, id
       ), log AS (
         INSERT INTO ${t.quoted}.changes (revision, id, kind) SELECT revision, id, 'put' FROM ins RETURNING revision
       )
       SELECT revision, pg_notify($7, revision::text) FROM log`,
      [
        stored.id,
        stored.der,
        stored.sha1,
        stored.sha256,
        JSON.stringify(stored.labels),
        stored.createTime,
        t.channel,
        notAfterOf(stored),
      ],
    );
    const row = result.rows[0];
    if (row !== undefined && audit !== undefined) await insertAuditRow(client, t, audit);
    return row === undefined ? "exists" : Number(row.revision);
  });
}

/**
 * BatchAudit is the audit of a batch write: the actor and time of its
 * records, and whether the batch gets a `create_batch` record of its own.
 */
export interface BatchAudit {
  readonly time: Date;
  readonly actor: AuditActor;
  readonly batch?: boolean;
}

/**
 * insertCertificates stores many certificates in one transaction, each with
 * a revision of its own, with one multi-row statement (arrays unnested).
 * Ids already taken are left alone, or, with `allOrNothing`, stop the whole
 * batch: nothing is written and they come back as `taken`. Resolves with
 * the ids stored and the last revision (0 when none was stored).
 */
export function insertCertificates(
  pool: Pool,
  t: Tables,
  stored: readonly StoredCertificate[],
  audit?: BatchAudit,
  allOrNothing = false,
): Promise<{ ids: string[]; revision: number; taken: string[] }> {
  return write(pool, t, async (client) => {
    const result = await client.query<{ id: string; revision: string }>(
      `WITH input AS (
         SELECT * FROM unnest($1::text[], $2::bytea[], $3::text[], $4::text[], $5::jsonb[], $6::timestamptz[], $7::timestamptz[])
           WITH ORDINALITY AS u(id, der, sha1, sha256, labels, create_time, not_after, n)
       ), ins AS (
         INSERT INTO ${t.quoted}.certificates (id, der, sha1, sha256, labels, create_time, not_after, revision)
         SELECT id, der, sha1, sha256, labels, create_time, not_after, nextval('${t.quoted}.revision') FROM input ORDER BY n
         ON CONFLICT (id) DO NOTHING RETURNING revision, id
       ), log AS (
         INSERT INTO ${t.quoted}.changes (revision, id, kind) SELECT revision, id, 'put' FROM ins RETURNING revision, id
       )
       SELECT id, revision FROM log`,
      [
        stored.map((s) => s.id),
        stored.map((s) => s.der),
        stored.map((s) => s.sha1),
        stored.map((s) => s.sha256),
        stored.map((s) => JSON.stringify(s.labels)),
        stored.map((s) => s.createTime),
        stored.map(notAfterOf),
      ],
    );
    if (allOrNothing && result.rows.length !== stored.length) {
      // Some ids are taken: nothing of the batch stays (the transaction
      // rolls back), and the caller is told which.
      const inserted = new Set(result.rows.map((r) => r.id));
      const taken = { ids: [], revision: 0, taken: stored.filter((s) => !inserted.has(s.id)).map((s) => s.id) };
      undone.add(taken);
      return taken;
    }
    let revision = 0;
    for (const row of result.rows) revision = Math.max(revision, Number(row.revision));
    if (audit !== undefined && result.rows.length > 0) {
      if (audit.batch === true) {
        await insertAuditRow(client, t, {
          ...okAuditRecord(audit.time, "create_batch", audit.actor, "", ""),
          reason: `${result.rows.length} certificate${result.rows.length === 1 ? "" : "s"}`,
        });
      }
      // One record per certificate stored, in revision order, in this transaction.
      const sha256 = new Map(stored.map((s) => [s.id, s.sha256]));
      const rows = [...result.rows].sort((x, y) => Number(x.revision) - Number(y.revision));
      await client.query(
        `INSERT INTO ${t.quoted}.audit_events (event_time, action, result, actor_subject, actor_sha256, certificate_id, sha256)
         SELECT $1, 'create', 'ok', $2, $3, id, sha256 FROM unnest($4::text[], $5::text[]) WITH ORDINALITY AS u(id, sha256, n) ORDER BY n`,
        [
          audit.time,
          audit.actor.subject.slice(0, 4096),
          audit.actor.sha256,
          rows.map((r) => r.id),
          rows.map((r) => sha256.get(r.id) ?? ""),
        ],
      );
    }
    if (revision > 0) await client.query("SELECT pg_notify($1, $2)", [t.channel, String(revision)]);
    return { ids: result.rows.map((r) => r.id), revision, taken: [] };
  });
}

// The end of a certificate's validity, for the indexed not_after column;
// null for an encoding the light reader does not follow (listings by expiry
// then read it from the DER).
function notAfterOf(stored: StoredCertificate): Date | null {
  if (stored.notAfter !== undefined) return stored.notAfter;
  try {
    return readValidity(stored.der).notAfter;
  } catch {
    return null;
  }
}

/**
 * deleteCertificate removes one certificate and logs it; resolves with the
 * revision, or `missing` when there is none.
 */
export function deleteCertificate(
  pool: Pool,
  t: Tables,
  id: string,
  audit?: (sha256: string) => AuditRecord,
): Promise<number | "missing"> {
  return write(pool, t, async (client) => {
    const result = await client.query<{ revision: string }>(
      `WITH del AS (
         DELETE FROM ${t.quoted}.certificates WHERE id = $1 RETURNING id, sha256
       ), log AS (
         INSERT INTO ${t.quoted}.changes (revision, id, kind) SELECT nextval('${t.quoted}.revision'), id, 'delete' FROM del RETURNING revision
       )
       SELECT revision, (SELECT sha256 FROM del) AS sha256, pg_notify($2, revision::text) FROM log`,
      [id, t.channel],
    );
    const row = result.rows[0] as { revision: string; sha256: string } | undefined;
    if (row !== undefined && audit !== undefined) await insertAuditRow(client, t, audit(row.sha256));
    return row === undefined ? "missing" : Number(row.revision);
  });
}

/**
 * pruneChanges drops the change log entries older than `retentionMs` (but
 * never the newest) and remembers through which revision it pruned, so that
 * a watch resuming from before it gets a snapshot. Returns how many it dropped.
 */
export async function pruneChanges(pool: Pool, t: Tables, retentionMs: number): Promise<number> {
  const result = await timed(pool, t.deadlines.queryTimeoutMs).query<{ dropped: string }>(
    `WITH d AS (
       DELETE FROM ${t.quoted}.changes
        WHERE change_time < now() - $1 * interval '1 millisecond'
          AND revision < (SELECT max(revision) FROM ${t.quoted}.changes)
        RETURNING revision
     ), u AS (
       UPDATE ${t.quoted}.store_info SET pruned_through = GREATEST(pruned_through, (SELECT max(revision) FROM d))
        WHERE EXISTS (SELECT 1 FROM d) RETURNING 1
     )
     SELECT count(*) AS dropped FROM d`,
    [retentionMs],
  );
  return Number(result.rows[0]?.dropped ?? 0);
}

/**
 * recordAudit appends one audit record under the store's write lock, so that
 * audit sequence numbers commit in order.
 */
export function recordAudit(pool: Pool, t: Tables, record: AuditRecord): Promise<void> {
  return write(pool, t, (client) => insertAuditRow(client, t, record));
}

// Results of write bodies whose transaction rolls back (as a string result does).
const undone = new WeakSet<object>();

// One write transaction under the store's write lock. Nothing of it stays
// when any statement fails. Its session settings bound every wait on the
// server, whatever pool it came from: the lock wait (lock_timeout), each
// statement, and the time the transaction may sit idle between statements,
// so that a replica frozen (or cut off) while it holds the lock loses its
// transaction and the lock after `idleInTransactionTimeoutMs`.
async function write<T>(pool: Pool, t: Tables, body: (client: Db) => Promise<T>): Promise<T> {
  const d = t.deadlines;
  const client = await begin(
    pool,
    `BEGIN; SET LOCAL lock_timeout = ${d.lockTimeoutMs}; SET LOCAL statement_timeout = ${d.statementTimeoutMs}; SET LOCAL idle_in_transaction_session_timeout = ${d.idleInTransactionTimeoutMs}`,
    d.queryTimeoutMs,
  );
  const db = timed(client, d.queryTimeoutMs);
  let broken: Error | undefined;
  try {
    try {
      await db.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [lockClass + writeLock, t.schema]);
      const result = await body(db);
      const undo = typeof result === "string" || (typeof result === "object" && result !== null && undone.has(result));
      await db.query(undo ? "ROLLBACK" : "COMMIT");
      return result;
    } catch (error) {
      // A connection that timed out is destroyed on release: no ROLLBACK to wait for.
      if (!isTimeout(error)) await db.query("ROLLBACK").catch(() => undefined);
      throw error;
    }
  } catch (error) {
    broken = error instanceof Error ? error : new Error(String(error));
    throw error;
  } finally {
    client.release(broken);
  }
}

const guarded = new WeakSet<object>();
const ignore = () => undefined;

/**
 * checkOut takes a connection of `pool`. pg-pool listens for a connection's
 * `error` only while it is idle: one that breaks while checked out between
 * two statements (a reset, the server ending an idle transaction) would
 * throw from the event emitter and end the process. The failure reaches
 * the caller through its next statement instead.
 */
export async function checkOut(pool: Pool): Promise<PoolClient> {
  const client = await pool.connect();
  if (!guarded.has(client)) {
    guarded.add(client);
    client.on("error", ignore);
  }
  return client;
}

/**
 * begin takes a pooled connection and starts a transaction on it. A pooled
 * connection that the server ended while it was idle (a restart,
 * `pg_terminate_backend`) fails its first statement before the pool has
 * heard of it; nothing was done yet, so the transaction starts once more on
 * a new connection. Any other failure, or a second one, is the caller's.
 */
async function begin(pool: Pool, statement: string, queryTimeoutMs: number): Promise<PoolClient> {
  for (let attempt = 0; ; attempt++) {
    const client = await checkOut(pool);
    try {
      await client.query(deadlined(statement, undefined, queryTimeoutMs));
      return client;
    } catch (error) {
      const broken = error instanceof Error ? error : new Error(String(error));
      client.release(broken);
      if (attempt > 0 || !isConnectionError(error)) throw error;
    }
  }
}
