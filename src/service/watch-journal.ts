import { randomUUID } from "node:crypto";
import type { StoreChange, StoredCertificate, WritableCertificateStore } from "../core/store.js";
import { checkJournalSizes, createJournalBuffer } from "./journal-buffer.js";

/**
 * JournalEntry is one revision of the service: the changes of one batch that
 * the store announced, with the stored certificates as they were read.
 */
export type JournalEntry =
  | {
      readonly kind: "change";
      readonly revision: number;
      /** Certificates put, as read just after the change. */
      readonly upserted: readonly StoredCertificate[];
      /** Ids deleted, and ids put but gone again by the time they were read. */
      readonly deleted: readonly string[];
    }
  | {
      /**
       * The changes of this revision could not be read (a store error), or
       * were too many for one entry (`maxEntryChanges`): whoever follows the
       * journal must start over from a snapshot.
       */
      readonly kind: "reset";
      readonly revision: number;
      /** The store error, or undefined when the batch was too large. */
      readonly error: unknown;
    };

/**
 * WatchJournal numbers the changes of a writable store and keeps the most
 * recent ones, so that a watcher can resume from the revision it last saw.
 */
export interface WatchJournal {
  /** A random id of this journal: revisions of another epoch mean nothing here. */
  readonly epoch: string;
  /** The revision of the newest entry. */
  readonly head: number;
  /**
   * The entries after `revision`, oldest first; undefined when some of them
   * are no longer kept (or `revision` is not one of this journal's).
   */
  since(revision: number): readonly JournalEntry[] | undefined;
  /**
   * For a watcher that resumes from `revision`: the entries after it through
   * `through`, read from wherever they are kept (a shared store's change
   * log); undefined when they are gone. By default (a journal of this
   * process alone), `since` answers.
   */
  resume?(revision: number): Promise<{ entries: readonly JournalEntry[]; through: number } | undefined>;
  /**
   * Resolves with `changed` once `head` passes `revision`, `timeout` after
   * `timeoutMs`, or `aborted` when the signal aborts.
   */
  wait(revision: number, signal: AbortSignal, timeoutMs: number): Promise<"changed" | "timeout" | "aborted">;
  /** Registers a listener for every new entry; returns its removal. */
  onEntry(listener: (entry: JournalEntry) => void): () => void;
  /** Resolves once every change announced so far is in the journal. */
  settled(): Promise<void>;
  /** Stops following the store; waiters are released. */
  close(): void;
}

/**
 * WatchJournalOptions configures `createWatchJournal`.
 */
export interface WatchJournalOptions {
  /** The store to follow. */
  store: WritableCertificateStore;
  /**
   * How many changed ids to keep for resuming watchers, across entries.
   * By default, 4096.
   */
  maxChanges?: number;
  /**
   * The most changed ids one entry may hold. A larger batch (a folder
   * replaced with 100k files) becomes a reset: watchers take a new snapshot,
   * page by page, instead of one entry read and held whole. By default, 1000.
   */
  maxEntryChanges?: number;
}

/**
 * createWatchJournal follows `store.onChanges` and turns each batch into a
 * `JournalEntry`, one revision per batch, in the order the store announced
 * them. Put ids are read back with `store.get` one batch at a time, so an
 * entry never holds data older than the change it describes.
 */
export function createWatchJournal(options: WatchJournalOptions): WatchJournal {
  const { store } = options;
  const maxChanges = options.maxChanges ?? 4096;
  const maxEntryChanges = options.maxEntryChanges ?? 1000;
  checkJournalSizes(maxChanges, maxEntryChanges);
  const epoch = randomUUID();
  const buffer = createJournalBuffer(1, maxChanges);
  // Batches are read one after another, so entries keep the store's order.
  let queue: Promise<void> = Promise.resolve();

  async function read(changes: readonly StoreChange[]): Promise<JournalEntry> {
    const revision = buffer.head + 1;
    // The last change of an id decides; earlier ones of the same batch are moot.
    const last = new Map<string, StoreChange["kind"]>();
    for (const change of changes) {
      last.set(change.id, change.kind);
    }
    if (last.size > maxEntryChanges) {
      return { kind: "reset", revision, error: undefined };
    }
    try {
      const upserted: StoredCertificate[] = [];
      const deleted: string[] = [];
      for (const [id, kind] of last) {
        const stored = kind === "put" ? await store.get(id) : undefined;
        if (stored === undefined) {
          deleted.push(id);
        } else {
          upserted.push(stored);
        }
      }
      return { kind: "change", revision, upserted, deleted };
    } catch (error) {
      return { kind: "reset", revision, error };
    }
  }

  const unsubscribe = store.onChanges((changes) => {
    if (buffer.closed || changes.length === 0) {
      return;
    }
    queue = queue.then(async () => {
      const entry = await read(changes);
      buffer.append(entry);
    });
  });

  return {
    epoch,
    get head() {
      return buffer.head;
    },
    since: buffer.since,
    wait: buffer.wait,
    onEntry: buffer.onEntry,
    settled() {
      return queue;
    },
    close() {
      if (buffer.closed) {
        return;
      }
      unsubscribe();
      buffer.close();
    },
  };
}
