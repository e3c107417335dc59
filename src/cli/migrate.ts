import { resolve } from "node:path";
import { createDirectoryStore, type DirectoryStoreProblem } from "../stores/directory-store.js";
import type { PostgresStore, PutManyEntry } from "../stores/postgres/postgres-store.js";
import { CliError, defineCommand, errorMessage, expectPositionals, ExitCode, json, usageError } from "./common.js";
import { checkDatabaseUrl, openDatabaseStore, redactUrl } from "./serve-database.js";

const help = `Usage: certgate migrate --from-dir DIR --database URL [--json]

Copies a folder store (the data folder of certgate serve --data-dir) into a
PostgreSQL store, keeping ids, labels and create times. It can run again:
a certificate already in the database under the same id is skipped. It
refuses, and reports, files the folder store skips, bundle members (id#n:
upload them under ids of their own), and ids taken in the database by
another certificate. Nothing is deleted on either side. Each certificate
copied gets a create event in the audit trail, with the actor "migrate",
written in the same transaction.

Options:
      --from-dir DIR   The folder store to copy. Required.
      --database URL   The PostgreSQL store (postgres://USER@HOST:PORT/DB);
                       the schema is created when missing.
                       By default, $CERTGATE_DATABASE_URL.
      --json           Print the result as JSON
  -h, --help           Show this help

Exit status: 0 when everything was copied or already there, 1 when
something was refused (listed on standard error).

Example:
  certgate migrate --from-dir /var/lib/certgate --database postgres://certgate@db/certgate
`;

const batchSize = 500;

// The actor of the audit events `certgate migrate` writes: no client
// certificate made the change, the operator's command did.
const migrateActor = { subject: "migrate", sha256: "" };

/**
 * migrateCommand is `certgate migrate`: a folder store into PostgreSQL.
 */
export const migrateCommand = defineCommand(
  {
    name: "migrate",
    help,
    options: {
      "from-dir": { type: "string" },
      database: { type: "string" },
      json: { type: "boolean" },
    },
  },
  async ({ values, positionals }, io) => {
    expectPositionals("migrate", positionals, "", { min: 0, max: 0 });
    const fromDir = values["from-dir"];
    if (fromDir === undefined) throw usageError("migrate", "--from-dir is required");
    const fromEnv = io.env.CERTGATE_DATABASE_URL;
    const url = values.database ?? (fromEnv === "" ? undefined : fromEnv);
    if (url === undefined) throw usageError("migrate", "--database is required (or CERTGATE_DATABASE_URL)");
    checkDatabaseUrl("migrate", values.database === undefined ? "CERTGATE_DATABASE_URL" : "--database", url);
    const log = (line: string) => io.stderr(`certgate migrate: ${line}\n`);

    const problems: DirectoryStoreProblem[] = [];
    let folder;
    try {
      folder = await createDirectoryStore({
        directory: resolve(io.cwd, fromDir),
        watch: false,
        rescanIntervalMs: 0,
        onProblem: (p) => problems.push(p),
      });
    } catch (error) {
      throw new CliError(`--from-dir ${fromDir}: ${errorMessage(error).replace(/^certgate: /, "")}`);
    }
    const copied: string[] = [];
    const skipped: string[] = [];
    const refused: { id: string; reason: string }[] = problems.map((p) => ({ id: p.file, reason: p.reason }));
    let database: PostgresStore | undefined;
    try {
      database = await openDatabaseStore("--database", url, log);
      const target = database;
      for (let after: string | undefined; ; ) {
        const page = await folder.list({ after, limit: batchSize });
        const batch: PutManyEntry[] = [];
        for (const entry of page) {
          if (entry.id.includes("#")) {
            refused.push({ id: entry.id, reason: "a member of a bundle file: upload it under an id of its own" });
            continue;
          }
          batch.push({ id: entry.id, der: entry.der, labels: entry.labels, createTime: entry.createTime });
        }
        // One transaction per batch: a thousand certificates take a few
        // commits, not a thousand. Ids already taken are read back (only
        // those): the same certificate is skipped, another one refused.
        const result = await target.putMany(batch, { actor: migrateActor });
        copied.push(...result.stored);
        refused.push(...result.refused);
        const bySha256 = new Map(page.map((entry) => [entry.id, entry.sha256]));
        for (const id of result.taken) {
          const existing = await target.get(id);
          if (existing !== undefined && existing.sha256 === bySha256.get(id)) skipped.push(id);
          else refused.push({ id, reason: "the id is taken in the database by another certificate" });
        }
        if (page.length < batchSize) break;
        after = page[page.length - 1]!.id;
      }
    } finally {
      await folder.close();
      await database?.close();
    }
    for (const r of refused) log(`refused ${r.id}: ${r.reason}`);
    if (values.json === true) {
      io.stdout(json({ copied: copied.sort(), skipped: skipped.sort(), refused }));
    } else {
      io.stdout(
        `certgate migrate: ${copied.length} copied, ${skipped.length} skipped (already in the database), ${refused.length} refused, into ${redactUrl(url)}\n`,
      );
    }
    return refused.length === 0 ? ExitCode.ok : ExitCode.failure;
  },
);
