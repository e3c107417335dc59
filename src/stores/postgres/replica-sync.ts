import type { Pool } from "pg";
import type { LoggedChange, ReplicaState, StoreChange } from "../../core/store.js";
import { createReplicaCopy, type ReplicaCopy } from "./replica-copy.js";

/**
 * readCopy reads the whole store (ids, thumbprints and labels) into a new copy, page by page.
 */
export async function readCopy(pool: Pool, tables: Tables): Promise<{ copy: ReplicaCopy; snapshot: Snapshot }> {
  const copy = createReplicaCopy();
  const snapshot = await loadSnapshot(pool, tables, (rows) => {
    for (const row of rows) copy.set(row.id, row.sha256, row.labels);
  });
  return { copy, snapshot };
}
import type { Tables } from "./db.js";
import { loadSnapshot, readChanges, type ChangeRead, type Snapshot } from "./queries.js";
import { isTimeout } from "./errors.js";

/**
 * ReplicaSyncOptions configures `createReplicaSync`.
 */
export interface ReplicaSyncOptions {
  readonly pool: Pool;
  readonly tables: Tables;
  /** The copy to start from, and the revision it was read at. */
  readonly copy: ReplicaCopy;
  readonly snapshot: Snapshot;
  readonly maxStaleMs: number;
  readonly catchUpIntervalMs: number;
  now(): number;
  /** Called for every revision applied to the copy, in order. */
  onApplied(logged: LoggedChange, changes: readonly StoreChange[]): void;
  /** Called when the state changes. */
  onState(state: ReplicaState, error: unknown): void;
}

/**
 * ReplicaSync keeps a process's copy of the store in step with the database.
 */
export interface ReplicaSync {
  readonly copy: ReplicaCopy;
  /** The revision the copy is at. */
  readonly head: number;
  /** The store's epoch (the database's id of the store). */
  readonly epoch: string;
  readonly state: ReplicaState;
  /** When the database was last reached, epoch ms, while not connected. */
  readonly lostAt: number;
  /** Reads the change log up to now; coalesces concurrent calls; never rejects. */
  catchUp(): Promise<void>;
  /** Hears a notification of `revision`. */
  notified(revision: number): void;
  close(): Promise<void>;
}

const pageSize = 2000;

/**
 * createReplicaSync reads the change log after the copy's revision when told
 * of a change (NOTIFY, a write of this process) and every
 * `catchUpIntervalMs`, so that a lost notification is only late, never
 * lost. A read that fails twice in a row marks the database unreachable:
 * `stale` while the copy is younger than `maxStaleMs`, then `unavailable`.
 * When the log was pruned past the copy, the whole store is read again and
 * the difference applied as one revision.
 *
 * Each read has a deadline of its own (`changeReadTimeoutMs`, also when the
 * pool's connection or the network never answers): a read past it fails at
 * once, without the second try, so that a partitioned replica stops
 * serving within about that deadline rather than the kernel's minutes.
 */
export function createReplicaSync(options: ReplicaSyncOptions): ReplicaSync {
  const { pool, tables, now } = options;
  const copy = options.copy;
  let head = options.snapshot.head;
  let epoch = options.snapshot.epoch;
  let state: ReplicaState = "connected";
  let lastOkAt = now();
  let lostAt = 0;
  let closed = false;
  let running: Promise<void> | undefined;
  let rerun: Promise<void> | undefined;

  function setState(next: ReplicaState, error: unknown): void {
    if (next === state) return;
    state = next;
    options.onState(next, error);
  }

  function failed(error: unknown): void {
    if (state === "connected") lostAt = lastOkAt;
    const stale = options.maxStaleMs > 0 && now() - lostAt <= options.maxStaleMs;
    setState(stale ? "stale" : "unavailable", error);
  }

  function apply(logged: LoggedChange): void {
    if (logged.revision <= head) return;
    const changes = copy.apply(logged);
    head = logged.revision;
    options.onApplied(logged, changes);
  }

  // The log was pruned past the copy: read the store again into a new copy
  // and announce the difference as one revision that makes watchers take a
  // new snapshot (its certificates are not listed).
  async function reload(): Promise<void> {
    const fresh = await readCopy(pool, tables);
    epoch = fresh.snapshot.epoch;
    if (fresh.snapshot.head < head) return;
    const changes = copy.replace(fresh.copy);
    head = fresh.snapshot.head;
    options.onApplied({ revision: head, reset: true, upserted: [], deleted: [] }, changes);
  }

  // One page of the log, or a rejection at the deadline even when the pool
  // or the socket never answers; the late answer is dropped.
  function readPage(): Promise<ChangeRead> {
    const ms = tables.deadlines.changeReadTimeoutMs;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(Object.assign(new Error(`Query read timeout: no change log read within ${ms} ms`), { deadline: true }));
      }, ms);
      readChanges(pool, tables, head, pageSize).then(
        (read) => {
          clearTimeout(timer);
          resolve(read);
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(error);
        },
      );
    });
  }

  async function once(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        for (;;) {
          const read = await readPage();
          if (head < read.prunedThrough) {
            await reload();
            break;
          }
          for (const logged of read.changes) apply(logged);
          if (read.changes.length < pageSize) break;
        }
        lastOkAt = now();
        setState("connected", undefined);
        return;
      } catch (error) {
        // One retry at once: a pooled connection terminated while idle
        // fails the first query, and the pool opens a new one.
        if (attempt >= 2 || closed || isTimeout(error)) {
          failed(error);
          return;
        }
      }
    }
  }

  function catchUp(): Promise<void> {
    if (closed) return Promise.resolve();
    if (running === undefined) {
      running = once().finally(() => {
        running = undefined;
      });
      return running;
    }
    rerun ??= running.then(() => {
      rerun = undefined;
      return catchUp();
    });
    return rerun;
  }

  const timer = setInterval(() => void catchUp(), options.catchUpIntervalMs);
  timer.unref();

  return {
    copy,
    get head() {
      return head;
    },
    get epoch() {
      return epoch;
    },
    get state() {
      // Between two reads the grace may run out: say so at once.
      if (state === "stale" && now() - lostAt > options.maxStaleMs) return "unavailable";
      return state;
    },
    get lostAt() {
      return lostAt;
    },
    catchUp,
    notified(revision) {
      if (revision > head) void catchUp();
    },
    async close() {
      closed = true;
      clearInterval(timer);
      await running;
    },
  };
}
