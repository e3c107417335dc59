import type { Pool } from "pg";
import type { StoredCertificate } from "../../core/store.js";
import { okAuditRecord, type AuditActor, type AuditRecord } from "../../core/audit.js";
import { readValidity } from "../../core/certificate-validity.js";
import { insertAuditRow } from "./audit-queries.js";
import { timed, undone, write, type Tables } from "./db.js";

// The writes of the PostgreSQL store. Every write takes the store's write lock
// (a transaction-level advisory lock) before it draws its revision from the
// sequence, so revisions commit in order: a reader that sees revision r has
// seen every revision below r, and a change log read from r never misses one
// that commits later with a smaller number.

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
