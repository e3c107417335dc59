import * as fs from "node:fs";

/**
 * FolderWatch is a live `fs.watch` on one folder.
 */
export interface FolderWatch {
  /** The folder's inode when the watch began: a different one means the folder was replaced. */
  readonly ino: number;
  /** False once the watcher failed or the folder went away; then it must be made anew. */
  readonly alive: boolean;
  close(): void;
}

/**
 * watchFolder watches `directory` (not recursively) and calls `onName` with
 * each changed entry name, or undefined when the platform does not say which.
 * It returns undefined when the folder cannot be watched; the periodic
 * rescan covers that case, and the filesystems where fs.watch stays silent
 * (network mounts, some container overlays).
 */
export function watchFolder(directory: string, onName: (name: string | undefined) => void): FolderWatch | undefined {
  let watcher: fs.FSWatcher;
  let ino: number;
  try {
    ino = fs.statSync(directory).ino;
    watcher = fs.watch(directory, { persistent: false }, (_event, name) => {
      onName(name === null ? undefined : name.toString());
    });
  } catch {
    return undefined;
  }
  let alive = true;
  const stop = () => {
    if (alive) {
      alive = false;
      watcher.close();
      onName(undefined);
    }
  };
  watcher.on("error", stop);
  watcher.on("close", () => {
    alive = false;
  });
  return {
    ino,
    get alive() {
      return alive;
    },
    close() {
      alive = false;
      watcher.close();
    },
  };
}
