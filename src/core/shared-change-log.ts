// The change log of a store shared by several processes (a database), as
// one process sees it: the numbered revisions its copy went through, and how
// it stands with the shared store.
import type { StoredCertificate } from "./store.js";

/**
 * LoggedChange is one revision of a `SharedChangeLog`: the certificates put
 * (as read at or after that revision) and the ids deleted.
 */
export interface LoggedChange {
  /** The revision, the same in every process that shares the store. */
  readonly revision: number;
  /**
   * Whether the copy was read again whole (the log was pruned past it):
   * `upserted` and `deleted` are then empty, and watchers take a new
   * snapshot. By default, false.
   */
  readonly reset?: boolean;
  readonly upserted: readonly StoredCertificate[];
  readonly deleted: readonly string[];
}

/**
 * ReplicaState is how a process stands with the shared store: `connected`,
 * `stale` (cut off, serving its last copy within its `maxStaleMs`), or
 * `unavailable` (cut off for longer: reads fail closed).
 */
export type ReplicaState = "connected" | "stale" | "unavailable";

/**
 * SharedChangeLog is the view of a shared store's change log that one
 * process has: the revisions its copy went through, and older ones on
 * request, with the same numbers and epoch in every process.
 */
export interface SharedChangeLog {
  /** The id of the shared store: revisions of another epoch mean nothing here. */
  readonly epoch: string;
  /** The revision of this process's copy. */
  readonly head: number;
  /** Registers a listener for every revision applied to the copy, in order; returns its removal. */
  onLogged(listener: (change: LoggedChange) => void): () => void;
  /**
   * The revisions after `revision` up to `until`, oldest first, read from
   * the shared log; undefined when some of them were pruned, or there are
   * more than `limit`.
   */
  changesSince(revision: number, until: number, limit: number): Promise<readonly LoggedChange[] | undefined>;
  /** How this process stands with the shared store. */
  readonly state: ReplicaState;
  /** Registers a listener for state changes; returns its removal. */
  onState(listener: (state: ReplicaState) => void): () => void;
}
