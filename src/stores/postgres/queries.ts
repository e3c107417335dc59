import type { ClientBase, Pool } from "pg";
import type { LoggedChange, StoredCertificate } from "../../core/store.js";
import { begin, timed, type Tables } from "./db.js";

// The reads of the PostgreSQL store: the snapshot of its copy, pages of
// certificates and the change log.

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

/** IndexRow is a certificate as the replica's copy keeps it. */
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
