import { Code, ConnectError } from "@connectrpc/connect";
import type { Certificate } from "../../core/certificate.js";
import type {
  ReplicaState,
  SharedChangeLog,
  StoreVerdict,
  StoredCertificate,
  WritableCertificateStore,
} from "../../core/store.js";
import { lookupFromMemory } from "../../core/sync-lookup.js";
import { createChangeFanOut } from "./change-fan-out.js";
import { createChangeListener, type ChangeListener } from "./change-listener.js";
import { isConnectionError, storeError } from "./errors.js";
import { loadPg } from "./load-pg.js";
import { openPools } from "./postgres-pools.js";
import { createPostgresWrites } from "./postgres-writes.js";
import { observeStoreSize, storeMetricsOf } from "../../core/metrics.js";
import { checkOut, type Tables } from "./db.js";
import { readChanges, selectCertificate, selectPage } from "./queries.js";
import { pruneChanges, recordAudit } from "./write-queries.js";
import { listAuditRows } from "./audit-queries.js";
import type { AuditedWrite, AuditLog } from "../../core/audit.js";
import { createReplicaSync, readCopy, type ReplicaSync } from "./replica-sync.js";
import { migrate } from "./schema.js";
import { resolveOptions, type PostgresStoreOptions, type PutManyEntry } from "./postgres-store-options.js";

export type { PostgresPool, PostgresStoreOptions, PutManyEntry } from "./postgres-store-options.js";

/**
 * PostgresStore is a `WritableCertificateStore` on PostgreSQL.
 */
export interface PostgresStore extends WritableCertificateStore {
  /**
   * Stores one certificate, like every writable store; `createTime` keeps
   * the create time of a certificate copied from another store
   * (`certgate migrate`). By default, now.
   */
  put(
    id: string,
    der: Uint8Array,
    options?: { labels?: Readonly<Record<string, string>>; createTime?: Date } & AuditedWrite,
  ): Promise<StoredCertificate>;
  readonly sharedLog: SharedChangeLog;
  /** The audit trail, the table `audit_events`; a write's record commits in the write's transaction. */
  readonly audit: AuditLog;
  /** How this process stands with the database. */
  readonly state: ReplicaState;
  /**
   * Stores many certificates in one transaction (each with a revision of its
   * own), keeping their create times: for copying a store (`certgate
   * migrate`). Ids already taken are left as they are and reported as
   * `taken`; certificates that `put` would refuse are reported as `refused`.
   * With an `actor`, each certificate stored gets its `create` audit event
   * in the same transaction.
   */
  putMany(
    entries: readonly PutManyEntry[],
    options?: AuditedWrite,
  ): Promise<{ stored: string[]; taken: string[]; refused: { id: string; reason: string }[] }>;
  /** How many certificates the copy holds, and at which revision of the database. */
  stats(): { certificates: number; revision: number };
}

/**
 * createPostgresStore opens (and creates or migrates) a certificate store in
 * a PostgreSQL database, to be shared by any number of `certgate serve`
 * replicas and API servers. It resolves once the store is loaded, and
 * rejects naming the problem when the database cannot be reached or its
 * schema is newer than this certgate.
 *
 * Each process keeps in memory what a decision needs (thumbprint, id and
 * labels, about 200 bytes per certificate at a million), so lookups never
 * wait on the database; the DER and the rest are read from the database,
 * page by page, for gets, listings and snapshots. The copy follows the
 * database's change log through LISTEN/NOTIFY and a periodic read. Writes
 * are transactions that the database orders: every change gets the next
 * revision of one sequence, the same in every process, and is in this
 * process's copy before the write resolves. Every database call has a
 * deadline (the `...TimeoutMs` options): a replica whose database stops
 * answering stops serving within seconds, and one frozen while it holds
 * the write lock loses it. See docs/store-service.md for the schema,
 * retention, backups and the bound on a revocation under each fault.
 *
 * `pg` is loaded only when this is called.
 *
 * @example
 * const store = await createPostgresStore({ connectionString: process.env.CERTGATE_DATABASE_URL });
 * createClientCertInterceptor({ store });
 */
export async function createPostgresStore(options: PostgresStoreOptions): Promise<PostgresStore> {
  const { schema, retentionMs, catchUpIntervalMs, maxStaleMs, reconnectDelayMs, maxReconnectDelayMs, deadlines, now } =
    resolveOptions(options);
  const metrics = storeMetricsOf(options, "postgres");

  const pg = await loadPg();
  const { pool, readPool, syncPool, endPools } = openPools(pg, options, deadlines);
  const quoted = pg.escapeIdentifier(schema);
  const tables: Tables = { schema, quoted, channel: `${schema}_changes`, deadlines };

  const fanOut = createChangeFanOut();
  let closed = false;

  let sync: ReplicaSync;
  let changeListener: ChangeListener | undefined;
  try {
    const client = await checkOut(pool);
    try {
      await migrate(client, schema, quoted);
    } finally {
      client.release();
    }
    const { copy, snapshot } = await readCopy(syncPool, tables);
    sync = createReplicaSync({
      pool: syncPool,
      tables,
      copy,
      snapshot,
      maxStaleMs,
      catchUpIntervalMs,
      now,
      onApplied: fanOut.announce,
      onState(state, error) {
        // A LISTEN connection on a network that stopped answering hears
        // nothing and says nothing: open it again.
        if (state !== "connected") changeListener?.restart();
        fanOut.stateChanged(state);
        try {
          options.onStateChange?.(state, error);
        } catch {
          // A failing hook must not change what the store does.
        }
      },
    });
  } catch (error) {
    await endPools();
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`certgate: cannot open the PostgreSQL store (schema ${schema}): ${reason}`, { cause: error });
  }

  changeListener = createChangeListener({
    pool: syncPool,
    quotedChannel: pg.escapeIdentifier(tables.channel),
    onNotify: (revision) => sync.notified(revision),
    onListening: () => void sync.catchUp(),
    reconnectDelayMs,
    maxReconnectDelayMs,
  });

  let pruning: Promise<unknown> = Promise.resolve();
  const sizeGauge = observeStoreSize(metrics, () => sync.copy.size);
  const pruneTimer = setInterval(
    () => {
      pruning = pruneChanges(pool, tables, retentionMs).catch(() => undefined);
    },
    Math.min(retentionMs, 60_000),
  );
  pruneTimer.unref();

  function assertOpen(): void {
    if (closed) throw new ConnectError("certificate store is closed", Code.Unavailable);
  }

  // Reads serve the copy while it may be served (see `maxStaleMs`).
  function assertReadable(): void {
    assertOpen();
    if (sync.state === "unavailable") {
      throw new ConnectError("certificate store unavailable: the database is unreachable", Code.Unavailable);
    }
  }

  const writes = createPostgresWrites({ pool, tables, sync, now, assertOpen, isClosed: () => closed });

  const audit: AuditLog = {
    async record(record) {
      assertOpen();
      try {
        await recordAudit(pool, tables, record);
      } catch (error) {
        if (isConnectionError(error)) void sync.catchUp();
        throw storeError("record the audit event", error);
      }
    },
    async list(query) {
      assertOpen();
      if (query.certificateId?.includes("\u0000")) {
        throw new ConnectError("certificate id filter must not contain NUL", Code.InvalidArgument);
      }
      try {
        return await listAuditRows(readPool, tables, query);
      } catch (error) {
        if (isConnectionError(error)) void sync.catchUp();
        throw storeError("read the audit trail", error);
      }
    },
  };

  const sharedLog: SharedChangeLog = {
    get epoch() {
      return sync.epoch;
    },
    get head() {
      return sync.head;
    },
    get state() {
      return closed ? "unavailable" : sync.state;
    },
    onLogged: fanOut.onLogged,
    onState: fanOut.onState,
    async changesSince(revision, until, limit) {
      if (revision >= until) return [];
      const read = await readChanges(readPool, tables, revision, limit + 1, until);
      if (revision < read.prunedThrough || read.changes.length > limit) return undefined;
      return read.changes;
    },
  };

  // Reads of what only people look at (the DER, create times) go to the
  // database, page by page: the copy keeps only what a decision needs.
  async function read<T>(what: string, query: () => Promise<T>): Promise<T> {
    try {
      return await query();
    } catch (error) {
      if (isConnectionError(error)) void sync.catchUp();
      throw storeError(what, error);
    }
  }

  function lookupSync(certificate: Certificate): StoreVerdict {
    if (closed) return { kind: "error", error: new Error("certificate store is closed") };
    const state = sync.state;
    if (state === "unavailable") return { kind: "error", error: new Error("the certificate database is unreachable") };
    const end = state === "stale" ? { expiresAt: sync.lostAt + maxStaleMs } : {};
    // By SHA-256 alone, as the other stores: a SHA-1-only match is a collision.
    const entry = sync.copy.findBySha256(certificate.sha256);
    if (entry === undefined) return { kind: "refused", reason: "not_allowed", ...end };
    return { kind: "admitted", entry: { id: entry.id, thumbprint: certificate.sha256, labels: entry.labels }, ...end };
  }

  return {
    get revision() {
      return fanOut.revision;
    },
    get state() {
      return closed ? "unavailable" : sync.state;
    },
    sharedLog,
    audit,
    stats: () => ({ certificates: sync.copy.size, revision: sync.head }),
    lookup: lookupFromMemory(lookupSync),
    onChange: fanOut.onChange,
    onChanges: fanOut.onChanges,
    put: writes.put,
    putMany: writes.putMany,
    putAll: writes.putAll,
    delete: writes.delete,
    async get(id): Promise<StoredCertificate | undefined> {
      assertReadable();
      return read("read the certificate", () => selectCertificate(readPool, tables, "id", id));
    },
    async findSha256(thumbprint) {
      assertReadable();
      return read("read the certificate", () => selectCertificate(readPool, tables, "sha256", thumbprint));
    },
    async list(query) {
      assertReadable();
      if (!Number.isInteger(query.limit) || query.limit < 1)
        throw new ConnectError("limit must be a positive integer", Code.InvalidArgument);
      return read("list the certificates", () => selectPage(readPool, tables, query));
    },
    async close() {
      if (closed) return;
      closed = true;
      sizeGauge?.remove();
      clearInterval(pruneTimer);
      changeListener?.close();
      await sync.close();
      await pruning;
      fanOut.close();
      // A pool of ours keeps its listener: connections still closing may
      // report errors after `end()` resolves.
      await endPools();
    },
  };
}
