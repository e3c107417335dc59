import type { Pool } from "pg";
import type { PgModule } from "./load-pg.js";
import type { Deadlines, PostgresStoreOptions } from "./postgres-store-options.js";

/**
 * PostgresPools are the connection pools of one PostgreSQL store.
 */
export interface PostgresPools {
  /** Writes. */
  readonly pool: Pool;
  /** Reads for callers: gets, listings, snapshots, the audit trail. */
  readonly readPool: Pool;
  /** The copy's own reads: the LISTEN connection and the change-log read. */
  readonly syncPool: Pool;
  /** Ends the pools the store made (and stops listening on the others), within the connect deadline. */
  endPools(): Promise<void>;
}

/**
 * openPools makes the store's pools, or takes the caller's `pool` and
 * `readPool`.
 */
export function openPools(pg: PgModule, options: PostgresStoreOptions, deadlines: Deadlines): PostgresPools {
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
  return { pool, readPool, syncPool, endPools };
}
