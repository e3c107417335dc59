import type { RemoteStoreState } from "./types.js";
import { createWaiters } from "./waiters.js";

/**
 * MirrorSyncOptions configures `createMirrorSync`.
 */
export interface MirrorSyncOptions {
  /** The store's clock, in milliseconds. */
  readonly now: () => number;
  /** How long after losing sync the copy still answers, in ms; 0 for not at all. */
  readonly maxStaleMs: number;
  /** Called when the copy's standing changes, so that open connections check again. */
  readonly changed: () => void;
}

/**
 * MirrorSync is a mirror's standing with the service: whether its copy is
 * current, since when it is not, and the callers waiting for it to be.
 */
export interface MirrorSync {
  /** Whether the copy is current: from the heartbeat that ends a watch's catch-up until the watch breaks. */
  readonly synced: boolean;
  /** Whether the copy was ever current. */
  readonly everSynced: boolean;
  /** Whether the store is closed. */
  readonly closed: boolean;
  /** When the copy last stopped being current. */
  readonly lostAt: number;
  /** The state the store reports. */
  state(): RemoteStoreState;
  /** Whether, at `t`, the copy is out of sync but still within `maxStaleMs` of losing it. */
  withinStale(t: number): boolean;
  /** Seconds since the copy was last known current (or since creation, before the first sync). */
  lagSeconds(): number;
  /** Marks the copy current and wakes the waiters. */
  markSynced(): void;
  /** Marks the copy out of sync since `at`, when it was current. */
  loseSync(at: number): void;
  /** Resolves once the copy is current or the store closed, after `timeoutMs`, or when `signal` aborts. */
  wait(timeoutMs: number, signal?: AbortSignal): Promise<void>;
  /** Marks the store closed and wakes the waiters. */
  close(): void;
}

/**
 * createMirrorSync starts a mirror's `MirrorSync` in the "connecting" state.
 */
export function createMirrorSync(options: MirrorSyncOptions): MirrorSync {
  const { now, maxStaleMs, changed } = options;
  const createdAt = now();
  let synced = false;
  let everSynced = false;
  let lostAt = 0;
  let closed = false;
  const waiters = createWaiters();

  function withinStale(t: number): boolean {
    return everSynced && !synced && maxStaleMs > 0 && t - lostAt <= maxStaleMs;
  }

  return {
    get synced() {
      return synced;
    },
    get everSynced() {
      return everSynced;
    },
    get closed() {
      return closed;
    },
    get lostAt() {
      return lostAt;
    },
    state() {
      if (closed) {
        return "closed";
      }
      if (synced) {
        return "synced";
      }
      if (!everSynced) {
        return "connecting";
      }
      return withinStale(now()) ? "stale" : "unavailable";
    },
    withinStale,
    lagSeconds() {
      return synced ? 0 : Math.max(0, now() - (everSynced ? lostAt : createdAt)) / 1000;
    },
    markSynced() {
      synced = true;
      everSynced = true;
      changed();
      waiters.wakeAll();
    },
    loseSync(at) {
      if (!synced) {
        return;
      }
      synced = false;
      lostAt = at;
      // Connections re-check at once: admitted verdicts given while in sync
      // had no end, those given from now on end with the stale window.
      changed();
    },
    wait(timeoutMs, signal) {
      if (synced || closed || signal?.aborted === true) {
        return Promise.resolve();
      }
      return waiters.wait(timeoutMs, signal);
    },
    close() {
      closed = true;
      synced = false;
      waiters.wakeAll();
    },
  };
}
