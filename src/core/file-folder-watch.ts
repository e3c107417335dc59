import { watch, realpathSync, type FSWatcher } from "node:fs";
import { dirname } from "node:path";

/**
 * FileFolderWatch watches the folders that hold some files.
 */
export interface FileFolderWatch {
  /** Watches the folders of the files as they are now (after a swap, the new symlink targets'). */
  follow(): void;
  close(): void;
}

/**
 * watchFileFolders calls `onEvent` on any change in the folder of each of
 * `paths` and in the folder of its symlink target: watching folders, not
 * inodes, sees an in-place write, a rename over the file (editors,
 * `install`) and Kubernetes' `..data` symlink swap alike. Call `follow()`
 * after each read, so that the new targets' folders are watched. A folder
 * that cannot be watched (gone, no permission) is skipped: pair this with a
 * periodic read.
 */
export function watchFileFolders(paths: readonly string[], onEvent: () => void): FileFolderWatch {
  const watchers = new Map<string, FSWatcher>();
  const follow = () => {
    const folders = new Set<string>();
    for (const path of paths) {
      folders.add(dirname(path));
      try {
        folders.add(dirname(realpathSync(path)));
      } catch {
        // Missing during a swap: its folder is watched after the next read.
      }
    }
    for (const [folder, watcher] of watchers) {
      if (!folders.has(folder)) {
        watcher.close();
        watchers.delete(folder);
      }
    }
    for (const folder of folders) {
      if (watchers.has(folder)) continue;
      try {
        const watcher = watch(folder, { persistent: false }, onEvent);
        // A folder that goes away (an old ..data target) is dropped; the
        // next read watches what replaced it.
        watcher.on("error", () => {
          watcher.close();
          if (watchers.get(folder) === watcher) watchers.delete(folder);
        });
        watchers.set(folder, watcher);
      } catch {
        // Not watchable: the periodic read covers it.
      }
    }
  };
  follow();
  return {
    follow,
    close() {
      for (const watcher of watchers.values()) watcher.close();
      watchers.clear();
    },
  };
}
