import type { LoggedChange, SharedChangeLog } from "../core/store.js";
import type { JournalEntry, WatchJournal } from "./watch-journal.js";

/**
 * createSharedJournal is the `WatchJournal` of a store shared by several
 * service replicas (see `SharedChangeLog`): its revisions and epoch are the
 * store's own, so a watcher resumes on any replica. It keeps the most recent
 * changes in memory, like `createWatchJournal`, and `resume` reads older
 * ones from the store's change log, so that a watcher coming from another
 * replica gets exactly the changes it missed, or a snapshot once they were
 * pruned. Revisions need not be consecutive.
 *
 * A revision that changed more than `maxEntryChanges` certificates (a
 * replica that copied the whole store again after a long disconnect) is kept
 * as a reset, as in `createWatchJournal`: its watchers take a new snapshot,
 * read page by page, instead of one entry held whole. By default, 1000.
 */
// How long a resuming watcher waits for this replica to reach its revision.
const resumeWaitMs = 2000;

export function createSharedJournal(log: SharedChangeLog, maxChanges: number, maxEntryChanges = 1000): WatchJournal {
  if (!Number.isInteger(maxChanges) || maxChanges < 1) {
    throw new TypeError(`journal size must be a positive integer, got ${String(maxChanges)}`);
  }
  if (!Number.isInteger(maxEntryChanges) || maxEntryChanges < 1) {
    throw new TypeError(`journal entry size must be a positive integer, got ${String(maxEntryChanges)}`);
  }
  const entries: JournalEntry[] = [];
  let kept = 0;
  let head = log.head;
  // The oldest revision from which `since` can answer from memory.
  let floor = head;
  let closed = false;
  const listeners = new Set<(entry: JournalEntry) => void>();
  const waiters = new Set<() => void>();

  function tooLarge(change: LoggedChange): boolean {
    return change.upserted.length + change.deleted.length > maxEntryChanges;
  }

  function entryOf(change: LoggedChange): JournalEntry {
    if (tooLarge(change)) return { kind: "reset", revision: change.revision, error: undefined };
    return { kind: "change", revision: change.revision, upserted: change.upserted, deleted: change.deleted };
  }

  function weight(entry: JournalEntry): number {
    return entry.kind === "change" ? Math.max(1, entry.upserted.length + entry.deleted.length) : 1;
  }

  const unsubscribe = log.onLogged((change) => {
    if (closed || change.revision <= head) return;
    const entry = entryOf(change);
    head = change.revision;
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
  });

  function since(revision: number): readonly JournalEntry[] | undefined {
    if (!Number.isSafeInteger(revision) || revision < floor || revision > head) return undefined;
    let lo = 0;
    let hi = entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (entries[mid]!.revision <= revision) lo = mid + 1;
      else hi = mid;
    }
    return entries.slice(lo);
  }

  function wait(revision: number, signal: AbortSignal, timeoutMs: number): Promise<"changed" | "timeout" | "aborted"> {
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
  }

  return {
    get epoch() {
      return log.epoch;
    },
    get head() {
      return head;
    },
    since,
    async resume(revision) {
      if (!Number.isSafeInteger(revision) || revision < 0) return undefined;
      // A watcher coming from a replica a little ahead of this one: give
      // this one a moment to catch up. A revision this store never reaches
      // (a database restored from a backup) gets a snapshot.
      const until = Date.now() + resumeWaitMs;
      const never = new AbortController().signal;
      while (head < revision && !closed && Date.now() < until) {
        await wait(head, never, Math.max(1, until - Date.now()));
      }
      if (head < revision) return undefined;
      const through = head;
      if (revision === through) return { entries: [], through };
      const memory = since(revision);
      if (memory !== undefined) return { entries: memory.filter((e) => e.revision <= through), through };
      const changes = await log.changesSince(revision, through, maxChanges);
      // A change too large for one entry means a snapshot, as it does live.
      if (changes === undefined || changes.some(tooLarge)) return undefined;
      return { entries: changes.map(entryOf), through };
    },
    wait,
    onEntry(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    // Entries are appended as the store applies them, before its writes resolve.
    settled: () => Promise.resolve(),
    close() {
      if (closed) return;
      closed = true;
      unsubscribe();
      listeners.clear();
      for (const wake of [...waiters]) wake();
    },
  };
}
