import type { ReplicaState } from "../../core/store.js";
import type { StoreMetricsOptions } from "../../core/metrics.js";

/**
 * PostgresStoreOptions configures `createPostgresStore`. Give `pool` or
 * `connectionString`.
 */
export interface PostgresStoreOptions extends StoreMetricsOptions {
  /**
   * A `pg.Pool` to use; the store takes one of its connections for LISTEN
   * and never ends the pool. By default, a pool of 10 connections made from
   * `connectionString` and ended by `close()`.
   */
  pool?: PostgresPool;
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
   * How long, after the database became unreachable, lookups, reads and
   * watches keep serving the last copy, in milliseconds (like the remote
   * store's `maxStaleMs`). Writes are refused at once. By default, 0: every
   * lookup fails closed as soon as the database cannot be reached.
   */
  maxStaleMs?: number;
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
  now(): number;
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
  const clock = options.clock;
  const now = clock === undefined ? Date.now : () => +clock();
  return { schema, retentionMs, catchUpIntervalMs, maxStaleMs, reconnectDelayMs, maxReconnectDelayMs, now };
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
