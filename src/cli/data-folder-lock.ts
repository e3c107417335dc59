import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import { hostname } from "node:os";
import * as path from "node:path";

/**
 * LockHolder is who holds a data folder: what the lock file says.
 */
export interface LockHolder {
  readonly pid: number;
  readonly host: string;
  /** When the holder started, ISO 8601. */
  readonly started: string;
}

/**
 * DataFolderLock is a held lock on a data folder.
 */
export interface DataFolderLock {
  /** The holder that was found dead and replaced, if any. */
  readonly tookOverFrom: LockHolder | undefined;
  /** Removes the lock file, if it is still ours. */
  release(): void;
}

/**
 * DataFolderLockOptions configures `lockDataFolder`.
 */
export interface DataFolderLockOptions {
  /**
   * How often the holder refreshes the lock file's modification time, ms.
   * A lock from another host that has not been refreshed for three times
   * this long is stale. By default, 10000.
   */
  refreshMs?: number;
  /** The current time, epoch ms. By default, `Date.now`. */
  now?: () => number;
}

// The lock files this process holds: its own pid in one of them is not stale.
const held = new Set<string>();

/** The lock file's name in the data folder: hidden, so no store loads it. */
export const lockFileName = ".certgate-serve.lock";

/**
 * DataFolderLockedError says that another live process holds the folder.
 */
export class DataFolderLockedError extends Error {
  override name = "DataFolderLockedError";
  constructor(
    readonly file: string,
    readonly holder: LockHolder | undefined,
  ) {
    super(
      holder === undefined
        ? `locked by ${file}, which cannot be read; remove it if no certgate serve uses the folder`
        : `in use by another certgate serve (pid ${holder.pid} on host ${holder.host}, since ${holder.started}); stop it first, or remove ${file} if that process is gone`,
    );
  }
}

/**
 * lockDataFolder takes the exclusive lock of a data folder, so that two
 * `certgate serve` processes never write one folder: the lock file names
 * its holder (pid, host, start time), is created whole with link(), and is
 * refreshed while held. It throws `DataFolderLockedError` when a live process
 * holds it.
 *
 * A lock is stale, and taken over, when its holder is gone: on this host, a
 * pid that no longer runs (a process killed with SIGKILL); from another host
 * sharing the folder, a lock not refreshed for three refresh periods. A
 * takeover runs under a second exclusive file and re-reads the lock before
 * replacing it, so that of several processes starting at once exactly one
 * wins.
 */
export function lockDataFolder(directory: string, options: DataFolderLockOptions = {}): DataFolderLock {
  const refreshMs = options.refreshMs ?? 10_000;
  const now = options.now ?? Date.now;
  const file = path.join(directory, lockFileName);
  const me: LockHolder = { pid: process.pid, host: hostname(), started: new Date(now()).toISOString() };
  const content = `${JSON.stringify(me)}\n`;
  const temporary = path.join(directory, `${lockFileName}.${randomBytes(6).toString("hex")}.tmp`);
  fs.writeFileSync(temporary, content, { mode: 0o644, flag: "wx" });
  let tookOverFrom: LockHolder | undefined;
  try {
    for (let attempt = 0; ; attempt++) {
      if (tryLink(temporary, file)) break;
      const seen = readLock(file);
      if (seen === undefined) continue; // gone meanwhile: try again
      const holder = parseHolder(seen.text);
      const stale = holder !== undefined && !held.has(file) && isStale(holder, seen.mtimeMs, now(), refreshMs);
      if (!stale || attempt >= 5) {
        throw new DataFolderLockedError(file, holder);
      }
      if (takeOver(file, seen.text, temporary)) {
        tookOverFrom = holder;
        break;
      }
      // Another process is taking over: give it a moment, then look again.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  } finally {
    fs.rmSync(temporary, { force: true });
  }
  held.add(file);
  const refresh = setInterval(() => {
    const at = new Date(now());
    fs.promises.utimes(file, at, at).catch(() => undefined);
  }, refreshMs);
  refresh.unref();
  let released = false;
  return {
    tookOverFrom,
    release() {
      if (released) return;
      released = true;
      clearInterval(refresh);
      held.delete(file);
      try {
        if (readLock(file)?.text === content) fs.rmSync(file, { force: true });
      } catch {
        // The folder cannot be read (gone, replaced): nothing left to release.
      }
    },
  };
}

// link() creates the name with the whole content, or fails when it exists.
function tryLink(from: string, to: string): boolean {
  try {
    fs.linkSync(from, to);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw error;
  }
}

function readLock(file: string): { text: string; mtimeMs: number } | undefined {
  try {
    const text = fs.readFileSync(file, "utf8");
    return { text, mtimeMs: fs.statSync(file).mtimeMs };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const value = JSON.parse(text) as Partial<LockHolder>;
    if (Number.isSafeInteger(value.pid) && typeof value.host === "string" && typeof value.started === "string") {
      return { pid: value.pid!, host: value.host, started: value.started };
    }
  } catch {
    // Not ours, or not a lock: not stale either.
  }
  return undefined;
}

function isStale(holder: LockHolder, mtimeMs: number, nowMs: number, refreshMs: number): boolean {
  if (holder.host === hostname()) {
    // Our own pid (the locks this process holds were set apart before): a
    // restarted container that got pid 1 again.
    return holder.pid === process.pid || !isRunning(holder.pid);
  }
  return nowMs - mtimeMs > 3 * refreshMs;
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

// Replaces the stale lock whose text was `stale`, under the takeover guard.
// Returns false when someone else changed the lock first (the caller looks
// again). The guard of a process that died within its takeover is removed
// when its pid no longer runs on this host, or after a minute.
function takeOver(file: string, stale: string, temporary: string): boolean {
  const guard = `${file}.takeover`;
  try {
    fs.writeFileSync(guard, `${process.pid} ${hostname()}\n`, { flag: "wx" });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    const seen = readLock(guard);
    const [pid, host] = (seen?.text ?? "").trim().split(" ");
    if (
      seen !== undefined &&
      ((host === hostname() && !isRunning(Number(pid))) || Date.now() - seen.mtimeMs > 60_000)
    ) {
      fs.rmSync(guard, { force: true });
    }
    return false;
  }
  try {
    if (readLock(file)?.text !== stale) return false;
    fs.rmSync(file, { force: true });
    // A process starting just now may have linked its own lock meanwhile.
    return tryLink(temporary, file);
  } finally {
    fs.rmSync(guard, { force: true });
  }
}
