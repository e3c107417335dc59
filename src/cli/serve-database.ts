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
            : `database unreachable (${redactSecrets(errorMessage(error), url)}): ${state === "stale" ? "serving the last copy" : "refusing"}`,
        );
      },
    });
  } catch (error) {
    const reason = redactSecrets(errorMessage(error).replace(/^certgate: /, ""), url);
    throw new CliError(`${source} ${redactUrl(url)}: ${reason}`, undefined, { cause: error });
  }
}

// Query parameters of a PostgreSQL URL that carry a secret (libpq's
// `password`, `sslpassword`; anything named like a password or secret).
const secretParameter = /pass|secret|token/i;

/**
 * redactUrl hides every secret of a database URL (the password of the user
 * information and any `?password=`-like query parameter), for messages and logs.
 */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    for (const key of [...parsed.searchParams.keys()]) {
      if (secretParameter.test(key)) parsed.searchParams.set(key, "***");
    }
    return parsed.toString().replaceAll("%2A%2A%2A", "***");
  } catch {
    return "(the database URL)";
  }
}

/**
 * redactSecrets replaces, in a message that may echo them (a driver's
 * error), the secrets of `url` and of `PGPASSWORD` with `***`.
 */
export function redactSecrets(
  message: string,
  url: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): string {
  const secrets = new Set<string>();
  const add = (value: string | undefined | null) => {
    // Very short values would redact ordinary words; they are no secret anyway.
    if (value !== undefined && value !== null && value.length >= 3) secrets.add(value);
  };
  add(env.PGPASSWORD);
  try {
    const parsed = new URL(url);
    add(parsed.password);
    add(safeDecode(parsed.password));
    for (const [key, value] of parsed.searchParams) if (secretParameter.test(key)) add(value);
    add(url);
  } catch {
    add(url);
  }
  let redacted = message;
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    redacted = redacted.replaceAll(secret, secret === url ? redactUrl(url) : "***");
  }
  return redacted;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
