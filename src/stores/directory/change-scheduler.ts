import * as fs from "node:fs";
import { classifyName } from "./folder-files.js";
import { watchFolder, type FolderWatch } from "./folder-watch.js";

/**
 * PendingChanges is what the watchers heard since the last flush.
 */
export interface PendingChanges {
  /** Changed names in the leaf folder. */
  readonly names: ReadonlySet<string>;
  /** Whether the whole leaf folder must be re-read (a `..data` swap, an unnamed event, a burst). */
  readonly all: boolean;
  /** Whether the CA folder changed. */
  readonly ca: boolean;
}

/**
 * ChangeSchedulerOptions wires a `ChangeScheduler` to the store.
 */
export interface ChangeSchedulerOptions {
  readonly directory: string;
  readonly caDirectory: string | undefined;
  readonly watch: boolean;
  readonly debounceMs: number;
  readonly rescanIntervalMs: number;
  /** Runs a task when no scan or write is running. */
  exclusive(task: () => Promise<void>): Promise<void>;
  /** Applies what the watchers heard. Called inside `exclusive`. */
  flush(pending: PendingChanges): Promise<void>;
  /** Re-reads both folders. Called inside `exclusive`. */
  rescan(): Promise<void>;
  /**
   * Told of a failure that `flush` or `rescan` did not handle themselves:
   * nothing a timer starts may end as an unhandled rejection (that would end
   * the process), so it lands here.
   */
  onError(error: unknown): void;
}

/**
 * ChangeScheduler turns watch events and the periodic rescan into scans.
 */
export interface ChangeScheduler {
  /** (Re)creates the watchers that are missing, dead, or on a replaced folder. */
  ensureWatches(): void;
  /** Drops the watcher of a folder that went away. */
  dropWatch(folder: string): void;
  close(): void;
}

// Past this many changed names a burst is cheaper as one full rescan.
const maxNames = 1000;

/**
 * createChangeScheduler starts the periodic rescan; call `ensureWatches()`
 * to start watching. Events are gathered for `debounceMs`, then flushed in
 * one scan; the rescan pause stretches to 20 times the last rescan's
 * duration, so that a big folder costs at most ~5% of a core.
 */
export function createChangeScheduler(options: ChangeSchedulerOptions): ChangeScheduler {
  const { directory, caDirectory, debounceMs, rescanIntervalMs } = options;
  const watches = new Map<string, FolderWatch | undefined>();
  let pending = { names: new Set<string>(), all: false, ca: false };
  let debounce: NodeJS.Timeout | undefined;
  let rescanTimer: NodeJS.Timeout | undefined;
  let closed = false;

  function heard(folder: "leaf" | "ca", name: string | undefined): void {
    if (closed) return;
    if (folder === "ca") pending.ca = true;
    else if (name === undefined || classifyName(name).kind === "kubernetes" || pending.names.size >= maxNames)
      pending.all = true;
    else pending.names.add(name);
    debounce ??= setTimeout(() => {
      debounce = undefined;
      options
        .exclusive(async () => {
          const taken = pending;
          pending = { names: new Set(), all: false, ca: false };
          if (!closed) await options.flush(taken);
        })
        .catch(options.onError);
    }, debounceMs);
  }

  function scheduleRescan(delayMs: number): void {
    if (rescanIntervalMs <= 0 || closed) return;
    rescanTimer = setTimeout(() => {
      const started = Date.now();
      options
        .exclusive(async () => {
          if (closed) return;
          scheduler.ensureWatches();
          await options.rescan();
        })
        .catch(options.onError)
        .finally(() => scheduleRescan(Math.max(rescanIntervalMs, (Date.now() - started) * 20)));
    }, delayMs);
    rescanTimer.unref();
  }

  const scheduler: ChangeScheduler = {
    ensureWatches() {
      if (!options.watch || closed) return;
      for (const [folder, kind] of [
        [directory, "leaf"],
        [caDirectory, "ca"],
      ] as const) {
        if (folder === undefined) continue;
        const current = watches.get(folder);
        const ino = inodeOf(folder);
        if (current?.alive && current.ino === ino) continue;
        current?.close();
        watches.set(folder, ino === undefined ? undefined : watchFolder(folder, (name) => heard(kind, name)));
      }
    },
    dropWatch(folder) {
      watches.get(folder)?.close();
      watches.set(folder, undefined);
    },
    close() {
      closed = true;
      clearTimeout(debounce);
      clearTimeout(rescanTimer);
      for (const watch of watches.values()) watch?.close();
      watches.clear();
    },
  };
  scheduleRescan(rescanIntervalMs);
  return scheduler;
}

// The folder's inode, or undefined when it cannot be checked for any reason
// (missing, a symlink loop, a parent replaced by a file, permission denied):
// the scan that follows reports the folder, and the last good set stays.
function inodeOf(folder: string): number | undefined {
  try {
    return fs.statSync(folder, { throwIfNoEntry: false })?.ino;
  } catch {
    return undefined;
  }
}
