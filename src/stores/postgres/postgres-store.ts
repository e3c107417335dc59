import { Code, ConnectError } from "@connectrpc/connect";
import type { Pool } from "pg";
import type { Certificate } from "../../core/certificate.js";
import {
  createChangeNotifier,
  isValidCertificateId,
  type LoggedChange,
  type ReplicaState,
  type SharedChangeLog,
  type StoreChange,
  type StoreVerdict,
  type StoredCertificate,
  type WritableCertificateStore,
} from "../../core/store.js";
import { lookupFromMemory } from "../../core/sync-lookup.js";
import { storedCertificate } from "../directory/store-io.js";
import { checkDer } from "./check-der.js";
import { createChangeListener, type ChangeListener } from "./change-listener.js";
import { isConnectionError, storeError } from "./errors.js";
import { loadPg } from "./load-pg.js";
import { observeStoreSize, storeMetricsOf } from "../../core/metrics.js";
import {
  deleteCertificate,
  insertCertificate,
  insertCertificates,
  checkOut,
  pruneChanges,
  readChanges,
  recordAudit,
  selectCertificate,
  selectPage,
  type Tables,
} from "./queries.js";
import { listAuditRows } from "./audit-queries.js";
import { okAuditRecord, type AuditActor, type AuditedWrite, type AuditLog } from "../../core/audit.js";
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
  const ownPool = options.pool === undefined;
  // Every connection of ours has a connect deadline, a client-side deadline
  // on each statement, server-side statement and idle-in-transaction limits,
  // and TCP keep-alive (so that even the idle LISTEN connection learns of a
  // dead peer).
  const poolOf = (max: number) =>
    new pg.Pool({
      connectionString: options.connectionString,
      max,
      connectionTimeoutMillis: deadlines.connectTimeoutMs,
      query_timeout: deadlines.queryTimeoutMs,
      statement_timeout: deadlines.statementTimeoutMs,
      lock_timeout: deadlines.lockTimeoutMs,
      idle_in_transaction_session_timeout: deadlines.idleInTransactionTimeoutMs,
      keepAlive: true,
      keepAliveInitialDelayMillis: deadlines.keepAliveDelayMs,
      application_name: "certgate",
    });
  // Writes, reads for callers and this copy's own reads never share
  // connections: writes queued on the write lock, or many watches resuming
  // at once, cannot take the ones that keep the copy current (and the
  // replica's health right): the LISTEN connection and the change-log read.
  const pool: Pool = (options.pool as Pool | undefined) ?? poolOf(10);
  const readPool: Pool = (options.readPool as Pool | undefined) ?? (ownPool ? poolOf(4) : pool);
  const syncPool: Pool = ownPool ? poolOf(2) : readPool;
  const pools = [...new Set([pool, readPool, syncPool])];
  // An idle connection that the server ends emits `error` on the pool; without
  // a listener that would end the process.
  const ignoreIdleError = () => undefined;
  for (const p of pools) p.on("error", ignoreIdleError);
  // Ending a connection waits for the server's goodbye, which a network
  // that stopped answering never sends: past the connect deadline, `close()`
  // stops waiting and the sockets end with the process (or the kernel's
  // timeout).
  const endPools = async () => {
    if (!ownPool) {
      for (const p of pools) p.off("error", ignoreIdleError);
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, deadlines.connectTimeoutMs);
      timer.unref();
    });
    await Promise.race([Promise.all(pools.map((p) => p.end().catch(() => undefined))), deadline]);
    clearTimeout(timer);
  };
  const quoted = pg.escapeIdentifier(schema);
  const tables: Tables = { schema, quoted, channel: `${schema}_changes`, deadlines };

  const notifier = createChangeNotifier();
  const changeListeners = new Set<(changes: readonly StoreChange[], revision: number) => void>();
  const loggedListeners = new Set<(change: LoggedChange) => void>();
  const stateListeners = new Set<(state: ReplicaState) => void>();
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
      onApplied: announce,
      onState(state, error) {
        // A LISTEN connection on a network that stopped answering hears
        // nothing and says nothing: open it again.
        if (state !== "connected") changeListener?.restart();
        // Connections re-check: verdicts given before are no longer right.
        notifier.changed();
        for (const listener of [...stateListeners]) {
          try {
            listener(state);
          } catch {
            // A faulty listener must not stop the others.
          }
        }
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

  function announce(logged: LoggedChange, changes: readonly StoreChange[]): void {
    for (const listener of [...loggedListeners]) call(listener, logged);
    if (changes.length === 0) return;
    notifier.changed();
    for (const listener of [...changeListeners]) {
      try {
        listener(changes, notifier.revision);
      } catch {
        // A faulty listener must not keep the others from the change.
      }
    }
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

  function assertId(id: string): void {
    if (typeof id !== "string" || !isValidCertificateId(id)) {
      throw new ConnectError(
        `invalid certificate id ${JSON.stringify(String(id)).slice(0, 140)}`,
        Code.InvalidArgument,
      );
    }
  }

  // Reads serve the copy while it may be served (see `maxStaleMs`).
  function assertReadable(): void {
    assertOpen();
    if (sync.state === "unavailable") {
      throw new ConnectError("certificate store unavailable: the database is unreachable", Code.Unavailable);
    }
  }

  // Writes need the database now: try to reach it once more before refusing.
  async function assertWritable(): Promise<void> {
    assertOpen();
    if (sync.state !== "connected") await sync.catchUp();
    if (sync.state !== "connected") {
      throw new ConnectError("certificate store unavailable: the database is unreachable", Code.Unavailable);
    }
  }

  async function afterWrite(revision: number): Promise<void> {
    // Read our own write back, so that the next lookup here sees it.
    while (sync.head < revision && sync.state === "connected" && !closed) await sync.catchUp();
  }

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

  const okRecord = (action: "create" | "delete", actor: AuditActor, id: string, sha256: string, time?: Date) =>
    okAuditRecord(time ?? new Date(Math.floor(now())), action, actor, id, sha256);

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
    onLogged(listener) {
      loggedListeners.add(listener);
      return () => loggedListeners.delete(listener);
    },
    onState(listener) {
      stateListeners.add(listener);
      return () => stateListeners.delete(listener);
    },
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

  // Checks a batch as `put` would each certificate; refused ones are named
  // by their position.
  function checkEntries(entries: readonly PutManyEntry[]) {
    const refused: { index: number; id: string; reason: string }[] = [];
    const checked: StoredCertificate[] = [];
    const seen = new Set<string>();
    entries.forEach((entry, index) => {
      try {
        assertId(entry.id);
        if (seen.has(entry.id))
          throw new ConnectError(`certificate ${JSON.stringify(entry.id)} given twice`, Code.InvalidArgument);
        seen.add(entry.id);
        const labels = entry.labels ?? {};
        const createTime =
          entry.createTime instanceof Date && !Number.isNaN(+entry.createTime)
            ? entry.createTime
            : new Date(Math.floor(now()));
        checked.push(storedCertificate(entry.id, checkDer(entry.der, labels), labels, createTime));
      } catch (error) {
        refused.push({
          index,
          id: String(entry.id),
          reason: error instanceof ConnectError ? error.rawMessage : String(error),
        });
      }
    });
    return { checked, refused };
  }

  // One multi-row insert in one transaction, with its audit records, read
  // back into the copy before it resolves.
  async function insertMany(checked: readonly StoredCertificate[], putOptions: AuditedWrite | undefined, all: boolean) {
    let result: { ids: string[]; revision: number; taken: string[] };
    try {
      const actor = putOptions?.actor;
      result = await insertCertificates(
        pool,
        tables,
        checked,
        actor === undefined
          ? undefined
          : { actor, time: putOptions?.auditTime ?? new Date(Math.floor(now())), batch: all },
        all,
      );
    } catch (error) {
      if (isConnectionError(error)) void sync.catchUp();
      throw storeError("store the certificates", error);
    }
    await afterWrite(result.revision);
    return result;
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
      return notifier.revision;
    },
    get state() {
      return closed ? "unavailable" : sync.state;
    },
    sharedLog,
    audit,
    stats: () => ({ certificates: sync.copy.size, revision: sync.head }),
    lookup: lookupFromMemory(lookupSync),
    onChange: notifier.onChange,
    onChanges(listener) {
      changeListeners.add(listener);
      return () => {
        changeListeners.delete(listener);
      };
    },
    async put(id, der, putOptions) {
      assertOpen();
      assertId(id);
      const labels = putOptions?.labels ?? {};
      const certificate = checkDer(der, labels);
      await assertWritable();
      const createTime = putOptions?.createTime;
      const stored = storedCertificate(
        id,
        certificate,
        labels,
        createTime instanceof Date && !Number.isNaN(+createTime) ? createTime : new Date(Math.floor(now())),
      );
      let result: number | "exists";
      try {
        const actor = putOptions?.actor;
        result = await insertCertificate(
          pool,
          tables,
          stored,
          actor === undefined ? undefined : okRecord("create", actor, id, stored.sha256, putOptions?.auditTime),
        );
      } catch (error) {
        if (isConnectionError(error)) void sync.catchUp();
        throw storeError("store the certificate", error);
      }
      if (result === "exists")
        throw new ConnectError(`certificate ${JSON.stringify(id)} already exists`, Code.AlreadyExists);
      await afterWrite(result);
      return stored;
    },
    async putMany(entries, putOptions) {
      assertOpen();
      const { checked, refused } = checkEntries(entries);
      if (checked.length === 0) return { stored: [], taken: [], refused };
      await assertWritable();
      const result = await insertMany(checked, putOptions, false);
      const stored = new Set(result.ids);
      return { stored: [...stored], taken: checked.filter((c) => !stored.has(c.id)).map((c) => c.id), refused };
    },
    async putAll(entries, putOptions) {
      assertOpen();
      const { checked, refused } = checkEntries(entries);
      if (refused.length > 0) return { kind: "refused", items: refused };
      if (checked.length === 0) return { kind: "stored", certificates: [] };
      await assertWritable();
      const result = await insertMany(checked, putOptions, true);
      if (result.taken.length > 0) {
        const taken = new Set(result.taken);
        return {
          kind: "refused",
          items: checked.flatMap((c, index) =>
            taken.has(c.id) ? [{ index, id: c.id, reason: `certificate ${JSON.stringify(c.id)} already exists` }] : [],
          ),
        };
      }
      return { kind: "stored", certificates: checked };
    },
    async delete(id, deleteOptions?: AuditedWrite) {
      assertOpen();
      assertId(id);
      await assertWritable();
      let result: number | "missing";
      try {
        const actor = deleteOptions?.actor;
        result = await deleteCertificate(
          pool,
          tables,
          id,
          actor === undefined ? undefined : (sha256) => okRecord("delete", actor, id, sha256, deleteOptions?.auditTime),
        );
      } catch (error) {
        if (isConnectionError(error)) void sync.catchUp();
        throw storeError("delete the certificate", error);
      }
      if (result === "missing") throw new ConnectError(`certificate ${JSON.stringify(id)} not found`, Code.NotFound);
      await afterWrite(result);
    },
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
      notifier.changed();
      notifier.clear();
      changeListeners.clear();
      loggedListeners.clear();
      stateListeners.clear();
      // A pool of ours keeps its listener: connections still closing may
      // report errors after `end()` resolves.
      await endPools();
    },
  };
}

function call<T>(listener: (value: T) => void, value: T): void {
  try {
    listener(value);
  } catch {
    // A faulty listener must not stop the others.
  }
}
