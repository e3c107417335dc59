// Where a command that decides (`certgate authz`) takes its admitted
// certificates and policy from: a data folder, a database, the store service
// (mirrored from one or several replicas) and pinned thumbprints, plus a
// policy file. The same flags and messages as `certgate serve` where they
// overlap.
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import type { CertificateStore } from "../core/store.js";
import type { PolicyOptions } from "../policy/policy-options.js";
import { createUnionStore } from "../service/union-store.js";
import { createDirectoryStore, type DirectoryStore, type DirectoryStoreOptions } from "../stores/directory-store.js";
import { createRemoteStore } from "../stores/remote-store.js";
import { createThumbprintStore } from "../stores/thumbprint-store.js";
import { fileErrorMessage } from "./certificate-files.js";
import { CliError, errorMessage, usageError, type CliIo } from "./common.js";
import { databaseUrlOf, openDatabaseStore, redactUrl } from "./serve-database.js";
import type { ServeLog } from "./serve-log.js";
import { readStoreClientTls, storeClientFiles, storeUrlOf } from "./store-client.js";
import { followTlsFlags, type TlsReload } from "./tls-reload.js";

/**
 * storeSourceFlags are the flags of `storeSources`, for `parseArgs`.
 */
export const storeSourceFlags = {
  "data-dir": { type: "string" },
  database: { type: "string" },
  store: { type: "string", multiple: true },
  cert: { type: "string" },
  key: { type: "string" },
  ca: { type: "string" },
  thumbprint: { type: "string", multiple: true },
  policy: { type: "string" },
} as const;

/**
 * storeSourceHelp is the help text of `storeSourceFlags`.
 */
export const storeSourceHelp = `Admitted certificates (at least one; several add up):
      --data-dir DIR       A data folder of certgate serve (or any folder of
                           client certificates), reloaded live
      --database URL       The PostgreSQL store of certgate serve --database
                           (postgres://USER@HOST:PORT/DB). By default,
                           $CERTGATE_DATABASE_URL if set. Not with --data-dir.
      --store URL          The certificate store service, mirrored locally
                           (deletions reach the next request); repeat it for
                           each replica. With --cert, --key (a reader
                           certificate) and --ca, or CERTGATE_CERT, ...
      --thumbprint T       SHA-1 or SHA-256 thumbprint of a client
                           certificate to admit (repeatable)
      --policy FILE        A JSON file of policy options: rules (per
                           procedure), identities, validateTrust,
                           requireClientAuthUsage, reportOnly, clockSkewMs,
                           expiryWarningDays (see docs/proxies.md)`;

/**
 * StoreSourceValues are the parsed `storeSourceFlags`.
 */
export interface StoreSourceValues {
  "data-dir"?: string;
  database?: string;
  store?: string[];
  cert?: string;
  key?: string;
  ca?: string;
  thumbprint?: string[];
  policy?: string;
}

/**
 * StoreSources is the opened store (undefined when the policy admits by
 * trust alone), the policy, and how to close them.
 */
export interface StoreSources {
  readonly store: CertificateStore | undefined;
  readonly policy: PolicyOptions;
  /** One line saying where certificates come from, for the log. */
  readonly description: string;
  close(): Promise<void>;
}

const policyKeys = new Set([
  "validateNotBefore",
  "validateNotAfter",
  "clockSkewMs",
  "validateTrust",
  "validateRevocation",
  "requireClientAuthUsage",
  "identities",
  "rules",
  "reportOnly",
  "expiryWarningDays",
]);

/**
 * openStoreSources opens every source the flags name and reads the policy
 * file. Mistakes fail here as `CliError`s naming the flag; a store service
 * that cannot be reached yet is not a mistake (the mirror refuses until it
 * has synced, and logs).
 */
export async function openStoreSources(
  command: string,
  values: StoreSourceValues,
  io: CliIo,
  log: ServeLog,
): Promise<StoreSources> {
  const policy = values.policy === undefined ? {} : await readPolicyFile(values.policy, io);
  const databaseUrl = databaseUrlOf(command, values, io);
  const storeUrls = (values.store ?? []).map((url) => storeUrlOf(command, url));
  const thumbprints = values.thumbprint ?? [];
  const trustOnly = policy.validateTrust !== undefined && policy.validateTrust !== false;
  if (
    values["data-dir"] === undefined &&
    databaseUrl === undefined &&
    storeUrls.length === 0 &&
    thumbprints.length === 0
  ) {
    if (!trustOnly) {
      throw usageError(
        command,
        "no certificate would be admitted: give --data-dir, --database, --store or --thumbprint (or a policy file with validateTrust)",
      );
    }
  }
  const stores: CertificateStore[] = [];
  const where: string[] = [];
  let clientCert: TlsReload | undefined;
  const close = async () => {
    await Promise.all(stores.map((s) => s.close()));
    clientCert?.close();
  };
  try {
    if (thumbprints.length > 0) {
      try {
        stores.push(createThumbprintStore(thumbprints));
      } catch (error) {
        throw usageError(command, `--thumbprint: ${errorMessage(error).replace(/^certgate: /, "")}`);
      }
      where.push(`${thumbprints.length} pinned thumbprint${thumbprints.length === 1 ? "" : "s"}`);
    }
    if (values["data-dir"] !== undefined) {
      stores.push(await openFolderStore("--data-dir", values["data-dir"], io, log));
      where.push(`data folder ${resolve(io.cwd, values["data-dir"])}`);
    }
    if (databaseUrl !== undefined) {
      stores.push(await openDatabaseStore("--database", databaseUrl, log));
      where.push(`database ${redactUrl(databaseUrl)}`);
    }
    if (storeUrls.length > 0) {
      // Mistakes in the files fail here; a renewed set is presented on the
      // next connection, read on change and on SIGHUP as serve reads its own.
      await readStoreClientTls(command, values, io);
      clientCert = followTlsFlags({
        files: storeClientFiles(command, values, io),
        cwd: io.cwd,
        log,
        metricsName: `${command} store client`,
      });
      const remote = createRemoteStore({
        clientCert: { baseUrls: storeUrls, files: clientCert.files, protocol: "grpc" },
        onEvent: (event) => {
          const url = storeUrls[event.transportIndex];
          if (event.kind === "synced") {
            log(`store service ${url} synced (${event.size} certificates)`, { url, certificates: event.size });
          } else {
            log(
              `store service ${url} unreachable (${errorMessage(event.error)}); retrying in ${Math.round(event.retryInMs / 1000)} s`,
              { url, retryInMs: event.retryInMs },
              "warn",
            );
          }
        },
      });
      stores.push(remote);
      where.push(`store service ${storeUrls.join(", ")}`);
    }
  } catch (error) {
    await close();
    throw error;
  }
  return {
    // One source keeps its own look-up (answered from memory, synchronously).
    store: stores.length === 0 ? undefined : stores.length === 1 ? stores[0] : createUnionStore(stores),
    policy,
    description: where.length === 0 ? "policy file trust alone" : where.join(", "),
    close,
  };
}

/**
 * openFolderStore opens a folder of client certificates, reloaded live,
 * logging the files it skips; failures are `CliError`s naming `flag`.
 */
export async function openFolderStore(
  flag: string,
  directory: string,
  io: CliIo,
  log: ServeLog,
  options: Omit<DirectoryStoreOptions, "directory" | "onProblem"> = {},
): Promise<DirectoryStore> {
  try {
    return await createDirectoryStore({
      ...options,
      directory: resolve(io.cwd, directory),
      onProblem: (p) =>
        log(
          p.code === "audit_file"
            ? `audit trail ${p.path}: ${p.reason}`
            : `${flag === "" ? "" : `${flag} `}skipped ${p.path}: ${p.reason}`,
          { path: p.path, code: p.code },
          "warn",
        ),
    });
  } catch (error) {
    throw new CliError(
      `${flag === "" ? "--data-dir" : flag} ${directory}: ${errorMessage(error).replace(/^certgate: /, "")}`,
    );
  }
}

/**
 * readPolicyFile reads a JSON file of policy options (`--policy FILE`,
 * `--verify-policy FILE`), naming `flag` in its errors.
 */
export async function readPolicyFile(name: string, io: CliIo, flag = "--policy"): Promise<PolicyOptions> {
  let text: string;
  try {
    text = await readFile(resolve(io.cwd, name), "utf8");
  } catch (error) {
    throw new CliError(`${flag} ${name}: ${fileErrorMessage(error)}`, undefined, { cause: error });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new CliError(`${flag} ${name}: not JSON (${errorMessage(error)})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new CliError(`${flag} ${name}: expected a JSON object of policy options`);
  }
  for (const key of Object.keys(parsed)) {
    if (!policyKeys.has(key)) {
      throw new CliError(
        `${flag} ${name}: unknown option ${JSON.stringify(key)}; expected ${[...policyKeys].join(", ")}`,
      );
    }
  }
  return parsed as PolicyOptions;
}
