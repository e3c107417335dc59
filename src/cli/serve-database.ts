import { createPostgresStore, type PostgresStore } from "../stores/postgres/postgres-store.js";
import { CliError, errorMessage, usageError, type CliIo } from "./common.js";

/**
 * databaseHelp is the `--database` part of `certgate serve --help`.
 */
export const databaseHelp = `      --database URL       Keep the store in PostgreSQL instead of a folder
                           (postgres://USER@HOST:PORT/DB), shared by every
                           replica started with the same URL; the schema is
                           created or migrated at start. Not with --data-dir.
                           By default, $CERTGATE_DATABASE_URL if set.`;

/**
 * databaseUrlOf returns the database URL of `certgate serve` (`--database`,
 * else `CERTGATE_DATABASE_URL`), or undefined for a folder store. A data
 * folder given as well is a usage error naming both.
 */
export function databaseUrlOf(
  command: string,
  values: { database?: string; "data-dir"?: string },
  io: CliIo,
): string | undefined {
  const fromEnv = io.env.CERTGATE_DATABASE_URL;
  const url = values.database ?? (fromEnv === undefined || fromEnv === "" ? undefined : fromEnv);
  if (url === undefined) return undefined;
  const source = values.database === undefined ? "CERTGATE_DATABASE_URL" : "--database";
  if (values["data-dir"] !== undefined) {
    throw usageError(
      command,
      `${source} and --data-dir are mutually exclusive: the store lives in the database or in a folder, not both`,
    );
  }
  checkDatabaseUrl(command, source, url);
  return url;
}

/**
 * checkDatabaseUrl refuses anything but a postgres:// or postgresql:// URL.
 */
export function checkDatabaseUrl(command: string, source: string, url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw usageError(command, `${source}: not a URL; expected postgres://USER@HOST:PORT/DATABASE`);
  }
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
    throw usageError(command, `${source} ${redactUrl(url)}: expected a postgres:// URL`);
  }
}

/**
 * openDatabaseStore opens the PostgreSQL store of `certgate serve` or
 * `certgate migrate`, logging when the database is lost and found again.
 * Failures are `CliError`s naming the (password-less) URL.
 */
export async function openDatabaseStore(
  source: string,
  url: string,
  log: (line: string) => void,
): Promise<PostgresStore> {
  try {
    return await createPostgresStore({
      connectionString: url,
      onStateChange(state, error) {
        log(
          state === "connected"
            ? "database reachable again"
            : `database unreachable (${errorMessage(error)}): ${state === "stale" ? "serving the last copy" : "refusing"}`,
        );
      },
    });
  } catch (error) {
    throw new CliError(`${source} ${redactUrl(url)}: ${errorMessage(error).replace(/^certgate: /, "")}`, undefined, {
      cause: error,
    });
  }
}

/**
 * redactUrl hides the password of a database URL, for messages and logs.
 */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(the database URL)";
  }
}
