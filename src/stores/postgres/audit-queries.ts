import type { Pool } from "pg";
import type { AuditEvent, AuditQuery, AuditRecord } from "../../core/audit.js";
import { timed, type Db, type Tables } from "./db.js";

// The SQL of the PostgreSQL store's audit trail (the audit_events table of
// migration 2). Rows are inserted under the store's write lock, so that their
// sequence numbers commit in order and a page read after seq s never misses
// a row that commits later with a smaller number.

interface AuditRow {
  seq: string;
  event_time: Date;
  action: AuditEvent["action"];
  result: AuditEvent["result"];
  code: string;
  reason: string;
  actor_subject: string;
  actor_sha256: string;
  certificate_id: string;
  sha256: string;
}

/**
 * insertAuditRow inserts one audit record with the given client, inside the
 * caller's transaction (and write lock).
 */
export async function insertAuditRow(client: Db, t: Tables, record: AuditRecord): Promise<void> {
  await client.query(
    `INSERT INTO ${t.quoted}.audit_events
       (event_time, action, result, code, reason, actor_subject, actor_sha256, certificate_id, sha256)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
    [
      record.time,
      record.action,
      record.result,
      record.code,
      record.reason.slice(0, 1024),
      record.actor.subject.slice(0, 4096),
      record.actor.sha256,
      record.certificateId.slice(0, 256),
      record.sha256,
    ],
  );
}

/**
 * listAuditRows reads one page of the audit trail, oldest first.
 */
export async function listAuditRows(
  pool: Pool,
  t: Tables,
  query: AuditQuery,
): Promise<{ events: AuditEvent[]; more: boolean }> {
  const result = await timed(pool, t.deadlines.queryTimeoutMs).query<AuditRow>(
    `SELECT seq, event_time, action, result, code, reason, actor_subject, actor_sha256, certificate_id, sha256
       FROM ${t.quoted}.audit_events
      WHERE seq > $1
        AND ($2::text IS NULL OR certificate_id = $2)
        AND ($3::timestamptz IS NULL OR event_time >= $3)
        AND ($4::timestamptz IS NULL OR event_time < $4)
      ORDER BY seq LIMIT $5`,
    [query.after ?? 0, query.certificateId ?? null, query.since ?? null, query.until ?? null, query.limit + 1],
  );
  const rows = result.rows.slice(0, query.limit);
  return {
    more: result.rows.length > query.limit,
    events: rows.map((row) =>
      Object.freeze({
        sequence: Number(row.seq),
        time: row.event_time,
        action: row.action,
        result: row.result,
        code: row.code,
        reason: row.reason,
        actor: Object.freeze({ subject: row.actor_subject, sha256: row.actor_sha256 }),
        certificateId: row.certificate_id,
        sha256: row.sha256,
      }),
    ),
  };
}
