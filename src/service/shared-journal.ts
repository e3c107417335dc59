import type { LoggedChange, SharedChangeLog } from "../core/store.js";
import type { JournalEntry, WatchJournal } from "./watch-journal.js";
import { checkJournalSizes, createJournalBuffer } from "./journal-buffer.js";

// How long a resuming watcher waits for this replica to reach its revision.
const resumeWaitMs = 2000;

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
export function createSharedJournal(log: SharedChangeLog, maxChanges: number, maxEntryChanges = 1000): WatchJournal {
  checkJournalSizes(maxChanges, maxEntryChanges);
  const buffer = createJournalBuffer(log.head, maxChanges);

  function tooLarge(change: LoggedChange): boolean {
    return change.reset === true || change.upserted.length + change.deleted.length > maxEntryChanges;
  }

  function entryOf(change: LoggedChange): JournalEntry {
    if (tooLarge(change)) return { kind: "reset", revision: change.revision, error: undefined };
    return { kind: "change", revision: change.revision, upserted: change.upserted, deleted: change.deleted };
  }

  const unsubscribe = log.onLogged((change) => {
    if (buffer.closed || change.revision <= buffer.head) return;
    buffer.append(entryOf(change));
  });

  return {
    get epoch() {
      return log.epoch;
    },
    get head() {
      return buffer.head;
    },
    since: buffer.since,
    async resume(revision) {
      if (!Number.isSafeInteger(revision) || revision < 0) return undefined;
      // A watcher coming from a replica a little ahead of this one: give
      // this one a moment to catch up. A revision this store never reaches
      // (a database restored from a backup) gets a snapshot.
      const until = Date.now() + resumeWaitMs;
      const never = new AbortController().signal;
      while (buffer.head < revision && !buffer.closed && Date.now() < until) {
        await buffer.wait(buffer.head, never, Math.max(1, until - Date.now()));
      }
      if (buffer.head < revision) return undefined;
      const through = buffer.head;
      if (revision === through) return { entries: [], through };
      const memory = buffer.since(revision);
      if (memory !== undefined) return { entries: memory.filter((e) => e.revision <= through), through };
      const changes = await log.changesSince(revision, through, maxChanges);
      // A change too large for one entry means a snapshot, as it does live.
      if (changes === undefined || changes.some(tooLarge)) return undefined;
      return { entries: changes.map(entryOf), through };
    },
    wait: buffer.wait,
    onEntry: buffer.onEntry,
    // Entries are appended as the store applies them, before its writes resolve.
    settled: () => Promise.resolve(),
    close() {
      if (buffer.closed) return;
      unsubscribe();
      buffer.close();
    },
  };
}
