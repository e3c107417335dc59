import type { ReplicaState } from "../../core/store.js";
import type { StoreMetricsOptions } from "../../core/metrics.js";

/**
 * PostgresStoreOptions configures `createPostgresStore`. Give `pool` or
 * `connectionString`.
 */
export interface PostgresStoreOptions extends StoreMetricsOptions {
  /**
   * A `pg.Pool` for writes (and, without `readPool`, for everything); the
   * store never ends it. Give it `query_timeout`, `connectionTimeoutMillis`
   * and `keepAlive: true`: the store bounds its own statements on the
   * server (`lock_timeout`, `statement_timeout` and
   * `idle_in_transaction_session_timeout` are set in every write
   * transaction), but only the pool's options bound a connection the
   * network stopped answering. By default, a pool of 10 connections made
   * from `connectionString` with the deadlines below, ended by `close()`.
   */
  pool?: PostgresPool;
  /**
   * A `pg.Pool` for reads: the change log (this copy's and resuming
   * watches'), snapshots, audit reads and the LISTEN connection, so that
   * writes waiting for the write lock never take the connections that keep
   * this copy current. By default, with `pool` given, `pool`; otherwise
   * (from `connectionString`) a pool of 4 connections for callers' reads
   * and one of 2 for the LISTEN connection and this copy's own reads.
   */
  readPool?: PostgresPool;
  /** A PostgreSQL URL, such as `postgres://certgate@db.internal/certgate`, when no `pool` is given. */
  connectionString?: string;
  /**
   * The schema that holds the store's tables, created when missing. Several
   * stores may share a database in schemas of their own. By default, `certgate`.
   */
  schema?: string;
  /**
   * How long the change log keeps a change, in milliseconds: a watch (or a
   * replica) that resumes from an older revision gets a fresh snapshot
   * instead of the missed changes. By default, 7 days.
   */
  changeRetentionMs?: number;
  /**
   * How often the change log is read even without a notification, in
   * milliseconds: the longest a change can be late when a notification was
   * lost. By default, 1000.
   */
  catchUpIntervalMs?: number;
  /**
   * How long, after the database became unreachable, lookups keep serving
   * the last copy (gets, listings and snapshots need the database), in milliseconds (like the remote
   * store's `maxStaleMs`). Writes are refused at once. By default, 0: every
   * lookup fails closed as soon as the database cannot be reached.
   */
  maxStaleMs?: number;
  /**
   * How long opening a connection, or waiting for a free one of the pool,
   * may take, in milliseconds (pools made from `connectionString`). By default, 5000.
   */
  connectTimeoutMs?: number;
  /**
   * How long one statement may run on the server (`statement_timeout`), in
   * milliseconds. By default, 5000.
   */
  statementTimeoutMs?: number;
  /**
   * How long a write waits for the store's write lock (`lock_timeout`)
   * before it fails with `Unavailable`, in milliseconds. It is longer than
   * `idleInTransactionTimeoutMs`, so that a write queued behind a frozen
   * holder outlasts it. By default, 3000.
   */
  lockTimeoutMs?: number;
  /**
   * How long a write session may sit idle inside its transaction before the
   * server ends it and releases its locks
   * (`idle_in_transaction_session_timeout`), in milliseconds: the bound on
   * how long a frozen or vanished replica can hold the write lock. By default, 2000.
   */
  idleInTransactionTimeoutMs?: number;
  /**
   * How long this process waits for the answer to one statement before it
   * gives the connection up (pools made from `connectionString`), in
   * milliseconds: the bound when the network stops answering, which no
   * server-side timeout gives. By default, 6000.
   */
  queryTimeoutMs?: number;
  /**
   * How long one read of the change log may take, in milliseconds. A
   * replica whose read fails or times out is `stale`, then `unavailable`
   * (see `maxStaleMs`): it stops serving until a read succeeds. By default, 2000.
   */
  changeReadTimeoutMs?: number;
  /**
   * How long reading the whole store (at start, or after the log was pruned
   * past this copy) may take, in milliseconds. By default, 60000.
   */
  snapshotTimeoutMs?: number;
  /**
   * The idle time before TCP keep-alive probes start on each connection, in
   * milliseconds (pools made from `connectionString`). By default, 10000.
   */
  keepAliveDelayMs?: number;
  /** The first delay before the listening connection is opened again, in ms; it doubles on each failure. By default, 100. */
  reconnectDelayMs?: number;
  /** The longest such delay, in milliseconds. By default, 5000. */
  maxReconnectDelayMs?: number;
  /** The current time, for create times and the stale window. By default, `Date.now`. */
  clock?: () => number | Date;
  /** Called when the store loses or regains the database, for logs. Errors it throws are ignored. By default, nothing is called. */
  onStateChange?: (state: ReplicaState, error: unknown) => void;
}

/**
 * PostgresPool is what the store needs of a `pg.Pool`, spelled out so that
 * these types do not need `@types/pg`: give a `pg.Pool`.
 */
export interface PostgresPool {
  connect(): Promise<unknown>;
  query(text: string, values?: unknown[]): Promise<unknown>;
  on(event: "error", listener: (error: Error) => void): unknown;
  off(event: "error", listener: (error: Error) => void): unknown;
  end(): Promise<void>;
}

/**
 * PutManyEntry is one certificate given to `putMany`.
 */
export interface PutManyEntry {
  readonly id: string;
  readonly der: Uint8Array;
  readonly labels?: Readonly<Record<string, string>>;
  /** By default, now. */
  readonly createTime?: Date;
}

const schemaName = /^[a-z_][a-z0-9_]{0,47}$/;

/**
 * ResolvedOptions are the checked options of `createPostgresStore`, defaults applied.
 */
export interface ResolvedOptions {
  readonly schema: string;
  readonly retentionMs: number;
  readonly catchUpIntervalMs: number;
  readonly maxStaleMs: number;
  readonly reconnectDelayMs: number;
  readonly maxReconnectDelayMs: number;
  readonly deadlines: Deadlines;
  now(): number;
}

/**
 * Deadlines are the resolved time limits of the store's database calls, in milliseconds.
 */
export interface Deadlines {
  readonly connectTimeoutMs: number;
  readonly statementTimeoutMs: number;
  readonly lockTimeoutMs: number;
  readonly idleInTransactionTimeoutMs: number;
  readonly queryTimeoutMs: number;
  readonly changeReadTimeoutMs: number;
  readonly snapshotTimeoutMs: number;
  readonly keepAliveDelayMs: number;
}

/**
 * resolveOptions checks the options of `createPostgresStore`, throwing a
 * `TypeError` that names the option.
 */
export function resolveOptions(options: PostgresStoreOptions): ResolvedOptions {
  if (options === undefined || (options.pool === undefined) === (options.connectionString === undefined)) {
    throw new TypeError(
      "certgate: createPostgresStore() needs exactly one of options.pool and options.connectionString",
    );
  }
  if (options.readPool !== undefined && options.pool === undefined) {
    throw new TypeError("certgate: createPostgresStore() options.readPool goes with options.pool");
  }
  const schema = options.schema ?? "certgate";
  if (typeof schema !== "string" || !schemaName.test(schema)) {
    throw new TypeError(
      `certgate: createPostgresStore() options.schema must be a lower-case SQL name of at most 48 characters, got ${JSON.stringify(schema)}`,
    );
  }
  const retentionMs = duration(
    "changeRetentionMs",
    options.changeRetentionMs,
    7 * 24 * 3600 * 1000,
    1000,
    Number.MAX_SAFE_INTEGER,
  );
  const catchUpIntervalMs = duration("catchUpIntervalMs", options.catchUpIntervalMs, 1000, 10);
  const maxStaleMs = duration("maxStaleMs", options.maxStaleMs, 0, 0);
  const reconnectDelayMs = duration("reconnectDelayMs", options.reconnectDelayMs, 100, 1);
  const maxReconnectDelayMs = duration("maxReconnectDelayMs", options.maxReconnectDelayMs, 5000, reconnectDelayMs);
  const deadlines: Deadlines = {
    connectTimeoutMs: duration("connectTimeoutMs", options.connectTimeoutMs, 5000, 1),
    statementTimeoutMs: duration("statementTimeoutMs", options.statementTimeoutMs, 5000, 1),
    lockTimeoutMs: duration("lockTimeoutMs", options.lockTimeoutMs, 3000, 1),
    idleInTransactionTimeoutMs: duration("idleInTransactionTimeoutMs", options.idleInTransactionTimeoutMs, 2000, 1),
    queryTimeoutMs: duration("queryTimeoutMs", options.queryTimeoutMs, 6000, 1),
    changeReadTimeoutMs: duration("changeReadTimeoutMs", options.changeReadTimeoutMs, 2000, 1),
    snapshotTimeoutMs: duration("snapshotTimeoutMs", options.snapshotTimeoutMs, 60_000, 1),
    keepAliveDelayMs: duration("keepAliveDelayMs", options.keepAliveDelayMs, 10_000, 0),
  };
  const clock = options.clock;
  const now = clock === undefined ? Date.now : () => +clock();
  return { schema, retentionMs, catchUpIntervalMs, maxStaleMs, reconnectDelayMs, maxReconnectDelayMs, deadlines, now };
}

// Durations used as timer delays stop at 2^31 - 1 ms, the longest Node keeps.
function duration(name: string, value: number | undefined, fallback: number, min: number, max = 2 ** 31 - 1): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new TypeError(
      `certgate: createPostgresStore() options.${name} must be an integer from ${min} to ${max} ms, got ${String(value)}`,
    );
  }
  return value;
}
