import { realpathSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { resolve } from "node:path";
import { CliError, errorMessage, usageError } from "./common.js";
import { DataFolderLockedError, lockDataFolder, type DataFolderLock } from "./data-folder-lock.js";
import type { ServeLog } from "./serve-log.js";

/**
 * ServeDataFolderOptions is what `openServeDataFolder` needs of
 * `certgate serve`'s flags.
 */
export interface ServeDataFolderOptions {
  /** The absolute path of `--data-dir`. */
  readonly dataDir: string;
  /** `--database`, when the store is PostgreSQL. */
  readonly databaseUrl: string | undefined;
  /** Whether serve makes its own development PKI (no `--tls-cert`). */
  readonly devMode: boolean;
  readonly adminDirs: readonly string[];
  readonly readerDirs: readonly string[];
  /** The working directory the role folders are relative to. */
  readonly cwd: string;
  readonly log: ServeLog;
}

/**
 * openServeDataFolder creates `certgate serve`'s data folder (mode 0700)
 * when the store or the development PKI lives there, refuses a role folder
 * that is the data folder, and locks the folder of a folder store (one
 * writer per data folder; replicas on one database share it by design, so
 * no lock then), saying so when it takes over the lock of a process that
 * is gone. Each problem is a `CliError` naming its flag.
 */
export async function openServeDataFolder(options: ServeDataFolderOptions): Promise<DataFolderLock> {
  const { dataDir, databaseUrl, devMode, adminDirs, readerDirs, cwd, log } = options;
  // With a database, the folder holds only the development PKI.
  try {
    if (databaseUrl === undefined || devMode) await mkdir(dataDir, { recursive: true, mode: 0o700 });
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const reason =
      code === "EEXIST" || code === "ENOTDIR" ? "not a folder" : `cannot create it: ${errorMessage(error)}`;
    throw new CliError(`--data-dir ${dataDir}: ${reason}`);
  }
  // The data folder holds the uploaded API client certificates: as a role
  // folder, every upload would also become an admin (or reader) of the store.
  const dataReal = databaseUrl === undefined ? realpathSync(dataDir) : undefined;
  for (const [flag, dirs] of [
    ["--admin-dir", adminDirs],
    ["--reader-dir", readerDirs],
  ] as const) {
    for (const dir of dirs) {
      if (dataReal !== undefined && realpathOrUndefined(resolve(cwd, dir)) === dataReal) {
        throw usageError(
          "serve",
          `${flag} ${dir} is the data folder: every uploaded certificate would get that role; keep role certificates in a folder of their own`,
        );
      }
    }
  }
  let lock: DataFolderLock = { tookOverFrom: undefined, release() {} };
  try {
    if (databaseUrl === undefined) lock = lockDataFolder(dataDir);
  } catch (error) {
    const reason = error instanceof DataFolderLockedError ? error.message : `cannot lock it: ${errorMessage(error)}`;
    throw new CliError(`--data-dir ${dataDir}: ${reason}`, undefined, { cause: error });
  }
  if (lock.tookOverFrom !== undefined) {
    const gone = lock.tookOverFrom;
    log(
      `took over the data folder lock of pid ${gone.pid} on host ${gone.host} (since ${gone.started}), which is gone`,
      { pid: gone.pid, host: gone.host },
      "warn",
    );
  }
  return lock;
}

// A missing folder is reported when it is opened, with its flag.
function realpathOrUndefined(folder: string): string | undefined {
  try {
    return realpathSync(folder);
  } catch {
    return undefined;
  }
}
