import { reconnectDelay } from "../../core/reconnect-delay.js";
import { timerDuration } from "./options.js";

/**
 * ReplicaFailoverOptions configures `createReplicaFailover`.
 */
export interface ReplicaFailoverOptions {
  /** The first wait after every replica failed, in ms. By default, 100. */
  readonly reconnectDelayMs?: number | undefined;
  /** The longest wait after every replica failed, in ms. By default, 5000. */
  readonly maxReconnectDelayMs?: number | undefined;
}

/**
 * ReplicaFailover is which replica a mirror follows and how long it waits
 * after a watch breaks: the next replica at once, and a backoff once every
 * replica failed in a row.
 */
export interface ReplicaFailover {
  /** The index of the replica followed now. */
  readonly current: number;
  /** Records a watch ended on purpose (to be resumed): a success. */
  renewed(): void;
  /**
   * Records a broken watch, `reachedSync` when it was in sync at some point,
   * and moves to the next replica. Returns the wait before watching it, or
   * undefined to watch it at once.
   */
  failed(reachedSync: boolean): number | undefined;
}

/**
 * createReplicaFailover starts a `ReplicaFailover` over `replicas` replicas
 * (at least 1) at the first one, throwing a `TypeError` naming a malformed
 * delay option.
 */
export function createReplicaFailover(replicas: number, options: ReplicaFailoverOptions): ReplicaFailover {
  const reconnectDelayMs = timerDuration("reconnectDelayMs", options.reconnectDelayMs, 100);
  const maxReconnectDelayMs = timerDuration("maxReconnectDelayMs", options.maxReconnectDelayMs, 5000);
  if (reconnectDelayMs < 1 || maxReconnectDelayMs < reconnectDelayMs) {
    throw new TypeError(
      `createRemoteStore(): reconnectDelayMs must be at least 1 and maxReconnectDelayMs at least reconnectDelayMs, got ${reconnectDelayMs} and ${maxReconnectDelayMs}`,
    );
  }
  let current = 0;
  let attempt = 0;
  // How many replicas in a row failed since the last sync.
  let failedInRow = 0;
  return {
    get current() {
      return current;
    },
    renewed() {
      attempt = 0;
      failedInRow = 0;
    },
    failed(reachedSync) {
      if (reachedSync) {
        attempt = 0;
        failedInRow = 0;
      }
      current = (current + 1) % replicas;
      failedInRow++;
      if (failedInRow < replicas) {
        // Another replica may still be reachable: try it at once, resuming
        // from the same revision (replicas of one store share revisions).
        return undefined;
      }
      failedInRow = 0;
      // Backoff with jitter, so that a fleet does not reconnect in step
      // after the service restarts.
      const wait = reconnectDelay(attempt, reconnectDelayMs, maxReconnectDelayMs);
      attempt = Math.min(attempt + 1, 30);
      return wait;
    },
  };
}
