import type { ClientBase, Pool, PoolClient, QueryConfig } from "pg";
import { lockClass, writeLock } from "./schema.js";
import { isConnectionError, isTimeout } from "./errors.js";
import type { Deadlines } from "./postgres-store-options.js";

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
 * undone holds the results of write bodies whose transaction rolls back (as
 * a string result does).
 */
export const undone = new WeakSet<object>();

/**
 * write runs `body` in one write transaction under the store's write lock.
 * Nothing of it stays when any statement fails. Its session settings bound
 * every wait on the server, whatever pool it came from: the lock wait
 * (lock_timeout), each statement, and the time the transaction may sit idle
 * between statements, so that a replica frozen (or cut off) while it holds
 * the lock loses its transaction and the lock after
 * `idleInTransactionTimeoutMs`.
 */
export async function write<T>(pool: Pool, t: Tables, body: (client: Db) => Promise<T>): Promise<T> {
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
export async function begin(pool: Pool, statement: string, queryTimeoutMs: number): Promise<PoolClient> {
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
