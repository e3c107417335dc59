import { createHash } from "node:crypto";
import { watch, type FSWatcher } from "node:fs";
import { readFile, readdir } from "node:fs/promises";
import { basename, dirname, extname, join } from "node:path";
import { createChangeNotifier } from "../core/store.js";

/**
 * FileSourceOptions says which files a CA set or a CRL set is read from, and
 * how changes are noticed.
 */
export interface FileSourceOptions {
  /** Files to read. By default, none. */
  files?: readonly string[];
  /**
   * A folder to read every file of (not recursively; names starting with `.`
   * are skipped, and only the usual extensions are read). By default, none.
   */
  directory?: string;
  /**
   * How often to look for changes, in milliseconds, in case file-system
   * events are missed (network file systems, some containers). Changes are
   * normally picked up at once through `fs.watch`. By default, 30000.
   */
  reloadIntervalMs?: number;
  /**
   * Called with what went wrong in a reload (a file that vanished or does not
   * parse); the last good contents of that file stay in use if it still
   * exists. By default, a process warning.
   */
  onError?: (error: Error) => void;
}

/**
 * FileSource is the reloading set of items parsed from files.
 */
export interface FileSource<T> {
  /** Changes whenever the items change. */
  readonly revision: number;
  readonly items: readonly T[];
  onChange(listener: (revision: number) => void): () => void;
  /** Looks for changes now; resolves once done. */
  reload(): Promise<void>;
  close(): Promise<void>;
}

interface Loaded<T> {
  readonly hash: string;
  readonly items: readonly T[];
}

/**
 * createFileSource reads the files once (throwing an error that names the
 * problem if a file or the folder cannot be read, a file does not parse, or
 * nothing is found), then watches them.
 */
export async function createFileSource<T>(
  what: string,
  options: FileSourceOptions,
  extensions: readonly string[],
  parse: (bytes: Uint8Array, path: string) => T[],
): Promise<FileSource<T>> {
  const files = options.files ?? [];
  const directory = options.directory;
  if (files.length === 0 && directory === undefined) {
    throw new TypeError(`certgate: ${what} needs files or a directory`);
  }
  const intervalMs = options.reloadIntervalMs ?? 30_000;
  if (!(intervalMs > 0)) {
    throw new TypeError(`certgate: ${what} reloadIntervalMs must be a positive number`);
  }
  const warn = (error: Error) => process.emitWarning(`certgate: ${error.message}`, { code: "CERTGATE_RELOAD" });
  const userOnError = options.onError;
  // A hook that throws must not become an unhandled rejection of the reload
  // loop: its error is warned about, like a reload error without a hook.
  const onError =
    userOnError === undefined
      ? warn
      : (error: Error) => {
          try {
            userOnError(error);
          } catch (thrown) {
            const why = thrown instanceof Error ? thrown.message : String(thrown);
            warn(new Error(`${error.message} (and onError threw: ${why})`));
          }
        };
  const notifier = createChangeNotifier();
  let loaded = new Map<string, Loaded<T>>();
  let items: readonly T[] = [];
  let closed = false;

  async function paths(): Promise<string[]> {
    const list = [...files];
    if (directory !== undefined) {
      for (const name of (await readdir(directory)).sort()) {
        if (!name.startsWith(".") && extensions.includes(extname(name).toLowerCase())) {
          list.push(join(directory, name));
        }
      }
    }
    return list;
  }

  // Reads every file; unchanged ones (same hash) keep their parsed items.
  async function load(initial: boolean): Promise<void> {
    const next = new Map<string, Loaded<T>>();
    let changed = false;
    let list: string[];
    try {
      list = await paths();
    } catch (error) {
      if (initial) throw new Error(`certgate: ${what}: cannot read ${directory}: ${(error as Error).message}`);
      onError(new Error(`${what}: cannot read ${directory}: ${(error as Error).message}`));
      return; // keep everything as it is
    }
    for (const path of list) {
      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(await readFile(path));
      } catch (error) {
        if (initial) throw new Error(`certgate: ${what}: cannot read ${path}: ${(error as Error).message}`);
        onError(new Error(`${what}: cannot read ${path}: ${(error as Error).message}`));
        continue; // gone: its items go too
      }
      const hash = createHash("sha256").update(bytes).digest("hex");
      const before = loaded.get(path);
      if (before !== undefined && before.hash === hash) {
        next.set(path, before);
        continue;
      }
      try {
        next.set(path, { hash, items: parse(bytes, path) });
        changed = true;
      } catch (error) {
        if (initial) throw new Error(`certgate: ${what}: ${path}: ${(error as Error).message}`);
        onError(new Error(`${what}: ${path}: ${(error as Error).message}`));
        if (before !== undefined) next.set(path, before);
      }
    }
    if (next.size !== loaded.size || [...loaded.keys()].some((p) => !next.has(p))) {
      changed = true;
    }
    if (closed || (!changed && !initial)) {
      return;
    }
    loaded = next;
    items = Object.freeze([...next.values()].flatMap((l) => l.items));
    if (initial && items.length === 0) {
      throw new Error(
        `certgate: ${what}: nothing found in ${[...files, ...(directory === undefined ? [] : [directory])].join(", ")}`,
      );
    }
    if (!initial) notifier.changed();
  }

  let running: Promise<void> | undefined;
  let again = false;
  function reload(): Promise<void> {
    if (running !== undefined) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        await load(false).catch((error: unknown) => onError(error as Error));
      } while (again && !closed);
      running = undefined;
    })();
    return running;
  }

  await load(true);

  // Watch folders rather than files, so that a file replaced by a rename
  // (the safe way to update it) is still seen.
  const watchers: FSWatcher[] = [];
  let debounce: NodeJS.Timeout | undefined;
  const schedule = () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => void reload(), 25);
    debounce.unref();
  };
  const folders = new Map<string, Set<string> | undefined>();
  for (const file of files) {
    const names = folders.get(dirname(file)) ?? new Set<string>();
    names.add(basename(file));
    folders.set(dirname(file), names);
  }
  if (directory !== undefined) folders.set(directory, undefined);
  for (const [folder, names] of folders) {
    try {
      const watcher = watch(folder, { persistent: false }, (_event, name) => {
        if (names === undefined || name === null || names.has(String(name))) schedule();
      });
      watcher.on("error", () => undefined); // the interval below still reloads
      watchers.push(watcher);
    } catch {
      // No watcher (inotify limits): the interval below still reloads.
    }
  }
  const timer = setInterval(() => void reload(), intervalMs);
  timer.unref();

  return {
    get revision() {
      return notifier.revision;
    },
    get items() {
      return items;
    },
    onChange: notifier.onChange,
    reload,
    async close() {
      closed = true;
      clearInterval(timer);
      clearTimeout(debounce);
      for (const w of watchers) w.close();
      notifier.clear();
      await running;
    },
  };
}
