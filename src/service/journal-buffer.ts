import type { JournalEntry, WatchJournal } from "./watch-journal.js";

/**
 * JournalBuffer keeps the most recent entries of a watch journal in memory,
 * bounded by the number of changed ids they hold, and wakes whoever waits
 * for or listens to new ones. Both journals (`createWatchJournal` for a
 * store of this process, `createSharedJournal` for one shared by replicas)
 * keep their entries in one.
 */
export interface JournalBuffer extends Pick<WatchJournal, "since" | "wait" | "onEntry"> {
  /** The revision of the newest entry. */
  readonly head: number;
  /** Whether `close` was called. */
  readonly closed: boolean;
  /** Appends a newer entry, drops the oldest past the bound, and tells listeners and waiters. */
  append(entry: JournalEntry): void;
  /** Releases waiters and forgets listeners; later appends are ignored. */
  close(): void;
}

/**
 * checkJournalSizes validates the two bounds every journal takes: how many
 * changed ids to keep in all, and how many one entry may hold.
 */
export function checkJournalSizes(maxChanges: number, maxEntryChanges: number): void {
  if (!Number.isInteger(maxChanges) || maxChanges < 1) {
    throw new TypeError(`journal size must be a positive integer, got ${String(maxChanges)}`);
  }
  if (!Number.isInteger(maxEntryChanges) || maxEntryChanges < 1) {
    throw new TypeError(`journal entry size must be a positive integer, got ${String(maxEntryChanges)}`);
  }
}

/**
 * createJournalBuffer starts an empty buffer at revision `head`, keeping at
 * most `maxChanges` changed ids across its entries (always the newest entry).
 * Revisions only grow; they need not be consecutive.
 */
export function createJournalBuffer(head: number, maxChanges: number): JournalBuffer {
  const entries: JournalEntry[] = [];
  let kept = 0;
  // The oldest revision from which `since` can answer.
  let floor = head;
  let closed = false;
  const listeners = new Set<(entry: JournalEntry) => void>();
  const waiters = new Set<() => void>();

  function weight(entry: JournalEntry): number {
    return entry.kind === "change" ? Math.max(1, entry.upserted.length + entry.deleted.length) : 1;
  }

  return {
    get head() {
      return head;
    },
    get closed() {
      return closed;
    },
    append(entry) {
      if (closed || entry.revision <= head) return;
      head = entry.revision;
      entries.push(entry);
      kept += weight(entry);
      while (kept > maxChanges && entries.length > 1) {
        const dropped = entries.shift() as JournalEntry;
        kept -= weight(dropped);
        floor = dropped.revision;
      }
      for (const listener of [...listeners]) {
        try {
          listener(entry);
        } catch {
          // One faulty follower must not starve the others.
        }
      }
      for (const wake of [...waiters]) wake();
    },
    since(revision) {
      if (!Number.isSafeInteger(revision) || revision < floor || revision > head) return undefined;
      // The first entry newer than `revision`, by binary search.
      let lo = 0;
      let hi = entries.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (entries[mid]!.revision <= revision) lo = mid + 1;
        else hi = mid;
      }
      return entries.slice(lo);
    },
    wait(revision, signal, timeoutMs) {
      if (head > revision) return Promise.resolve("changed");
      if (signal.aborted || closed) return Promise.resolve("aborted");
      return new Promise((resolve) => {
        const done = (result: "changed" | "timeout" | "aborted") => {
          clearTimeout(timer);
          waiters.delete(wake);
          signal.removeEventListener("abort", abort);
          resolve(result);
        };
        const wake = () => done(closed ? "aborted" : "changed");
        const abort = () => done("aborted");
        const timer = setTimeout(() => done("timeout"), timeoutMs);
        waiters.add(wake);
        signal.addEventListener("abort", abort);
      });
    },
    onEntry(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    close() {
      if (closed) return;
      closed = true;
      listeners.clear();
      for (const wake of [...waiters]) wake();
    },
  };
}
