import { realpathSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { createSecureContext } from "node:tls";
import { resolve } from "node:path";
import { normalizeThumbprint } from "../core/thumbprint.js";
import { createCertificateStoreServer, type CertificateStoreServer } from "../service/certificate-store-server.js";
import type { CertificateStore } from "../core/store.js";
import { databaseHelp, databaseUrlOf, openDatabaseStore, redactUrl } from "./serve-database.js";
import { auditKeyFileHelp, readAuditKeyFile } from "./audit-key.js";
import { readTextFile, tlsConfigReason } from "./certificate-files.js";
import { CliError, defineCommand, errorMessage, expectPositionals, ExitCode, usageError } from "./common.js";
import { DataFolderLockedError, lockDataFolder, type DataFolderLock } from "./data-folder-lock.js";
import { ensureDevPki } from "./dev-pki.js";
import { createRateLimitedLog } from "./rate-limited-log.js";
import { printConsoleGuide } from "./serve-console.js";
import { printDevGuide } from "./serve-guide.js";
import { followTlsFlags, type TlsReload } from "./tls-reload.js";
import { logFormatHelp, serveLogOf, withLogFormat } from "./serve-log.js";
import { countFlag, parseListen, secondsFlag } from "./listen-flags.js";
import { openFolderStore, readPolicyFile } from "./store-sources.js";

const help = `Usage: certgate serve [--listen HOST:PORT] [--data-dir DIR | --database URL]
                      [--tls-cert FILE --tls-key FILE] [--client-ca FILE]
                      [--admin THUMBPRINT]... [--reader THUMBPRINT]...
                      [--admin-dir DIR]... [--reader-dir DIR]...
                      [--no-console] [--verify-policy FILE]
                      [--log-format text|json] [LIMITS]

Runs the certificate store service (certgate.v1.CertificateStoreService,
grpc.health.v1.Health and gRPC server reflection for readers and admins)
over HTTP/2 with TLS. Uploaded certificates are kept
as files in the data folder, which API servers can also read directly with
createDirectoryStore(), or with --database in PostgreSQL, shared by every
replica on the same database. Admin client certificates may upload and delete;
reader certificates may list, get, verify and watch.

Without --tls-cert and --tls-key it runs in development mode: on the first
start it creates a CA, a server certificate for localhost, 127.0.0.1 and ::1,
and admin, reader and example client certificates under DIR/dev/ (keys mode
0600), then prints ready-to-paste commands. Never use them in production.

Options:
      --listen HOST:PORT   Where to listen; port 0 picks a free port. The bound
                           address is printed as "listening on URL".
                           By default, localhost:8444.
      --data-dir DIR       The data folder, created when missing.
                           By default, .certgate/store
${databaseHelp}
      --tls-cert FILE      The server's certificate (chain), PEM
      --tls-key FILE       Its private key, PEM
      --client-ca FILE     CA certificate(s), PEM: every client certificate
                           must also chain to one of them, whatever list it
                           is on. By default, the lists alone decide.
      --admin THUMBPRINT   SHA-1 or SHA-256 thumbprint of an admin client
                           certificate (repeatable; see certgate thumbprint)
      --reader THUMBPRINT  Thumbprint of a reader client certificate (repeatable)
      --admin-dir DIR      A folder of admin client certificates, reloaded
                           live (repeatable)
      --reader-dir DIR     A folder of reader client certificates (repeatable)
      --no-console         Do not serve the console, the web page at / for
                           admins and readers (see docs/console.md). By
                           default, it is served.
      --verify-policy FILE A JSON file of policy options (validateTrust,
                           validateRevocation with ocsp or
                           crlDistributionPoints, identities, ...) that
                           VerifyCertificate applies on top of the store (see
                           docs/policy.md). By default, the store and the
                           validity window alone.
${logFormatHelp}
${auditKeyFileHelp}
                           By default, plain SHA-256 digests (see
                           docs/audit.md for what each detects).
  -h, --help               Show this help

LIMITS ("N" a whole number, "S" seconds, fractions allowed):
      --max-watches N      Open WatchCertificates calls in all; more are
                           refused with RESOURCE_EXHAUSTED. By default, 1024.
                           (Health Watch calls are counted on their own.)
      --max-watches-per-connection N
                           The same, per connection. By default, 16.
      --watch-max-entry-changes N
                           A change of more than N certificates at once (a
                           folder replaced, a replica's full copy) reaches
                           watchers as a new snapshot. By default, 1000.
      --idle-timeout S     Close a connection after S seconds without a call
                           (open watches keep theirs); 0 never. By default, 60.
      --handshake-timeout S
                           Close a connection whose TLS handshake has not
                           finished after S seconds. By default, 10.
      --max-refused-calls-per-connection N
                           Close a connection with GOAWAY after N refused
                           calls on it; 0 never. By default, 100.
      --refusal-log-limit N
                           Log at most N refused calls per interval, then one
                           line "M more refusals in the last S s"; 0 logs
                           only that line. By default, 20.
      --refusal-log-interval S
                           The interval of --refusal-log-limit. By default, 10.
      --audit-max-bytes N  Rotate the data folder's audit trail of changes
                           before it grows beyond N bytes (the file before
                           is kept, the one before it dropped).
                           By default, 16777216 (16 MiB).
      --audit-attempts-max-bytes N
                           The same for its trail of refused and failed
                           attempts, kept apart so that refusals never push
                           out changes. By default, 4194304 (4 MiB).

The data folder is locked (DIR/.certgate-serve.lock): a second serve on it
exits with a message naming the holder; the lock of a process that is gone
is taken over.

SIGINT or SIGTERM stops the service gracefully (running calls may finish).
The --tls-cert, --tls-key and --client-ca files are reloaded when they
change (a Kubernetes Secret update too) and on SIGHUP, for new connections;
a set that is half written or whose key does not match is logged and not
loaded, and the one in use is kept.

Examples:
  certgate serve
  certgate serve --listen 0.0.0.0:8444 --data-dir /var/lib/certgate \\
    --tls-cert server.pem --tls-key server-key.pem --client-ca clients-ca.pem \\
    --admin 3AF2...9C --reader-dir /etc/certgate/readers
`;

/**
 * serveCommand is `certgate serve`: the certificate store service over a
 * directory store, until SIGINT or SIGTERM.
 */
export const serveCommand = withLogFormat(
  defineCommand(
    {
      name: "serve",
      help,
      options: {
        listen: { type: "string" },
        "data-dir": { type: "string" },
        database: { type: "string" },
        "tls-cert": { type: "string" },
        "tls-key": { type: "string" },
        "client-ca": { type: "string" },
        admin: { type: "string", multiple: true },
        reader: { type: "string", multiple: true },
        "admin-dir": { type: "string", multiple: true },
        "reader-dir": { type: "string", multiple: true },
        "max-watches": { type: "string" },
        "max-watches-per-connection": { type: "string" },
        "watch-max-entry-changes": { type: "string" },
        "idle-timeout": { type: "string" },
        "handshake-timeout": { type: "string" },
        "max-refused-calls-per-connection": { type: "string" },
        "refusal-log-limit": { type: "string" },
        "refusal-log-interval": { type: "string" },
        "log-format": { type: "string" },
        "audit-key-file": { type: "string" },
        "audit-max-bytes": { type: "string" },
        "audit-attempts-max-bytes": { type: "string" },
        "no-console": { type: "boolean" },
        "verify-policy": { type: "string" },
      },
    },
    async ({ values, positionals }, io) => {
      expectPositionals("serve", positionals, "", { min: 0, max: 0 });
      const listen = parseListen(values.listen ?? "localhost:8444");
      const thumbprints = (flag: string, list: readonly string[] | undefined) =>
        (list ?? []).map((text) => {
          try {
            return normalizeThumbprint(text);
          } catch (error) {
            throw usageError("serve", `--${flag}: ${errorMessage(error)}`);
          }
        });
      const admins = thumbprints("admin", values.admin);
      const readers = thumbprints("reader", values.reader);
      const tlsCert = values["tls-cert"];
      const tlsKey = values["tls-key"];
      const devMode = tlsCert === undefined && tlsKey === undefined;
      if (tlsCert === undefined && tlsKey !== undefined) {
        throw usageError("serve", "--tls-key needs --tls-cert");
      }
      if (tlsCert !== undefined && tlsKey === undefined) {
        throw usageError("serve", "--tls-cert needs --tls-key");
      }
      if (devMode && values["client-ca"] !== undefined) {
        throw usageError("serve", "--client-ca needs --tls-cert and --tls-key (development mode makes its own CA)");
      }
      const limits = {
        maxWatches: count("max-watches", values["max-watches"], 1024, 1),
        maxWatchesPerConnection: count("max-watches-per-connection", values["max-watches-per-connection"], 16, 1),
        watchMaxEntryChanges: count("watch-max-entry-changes", values["watch-max-entry-changes"], 1000, 1),
        idleTimeoutMs: milliseconds("idle-timeout", values["idle-timeout"], 60_000, true),
        handshakeTimeoutMs: milliseconds("handshake-timeout", values["handshake-timeout"], 10_000, false),
        maxRefusedCallsPerConnection:
          count("max-refused-calls-per-connection", values["max-refused-calls-per-connection"], 100, 0) || Infinity,
      };
      const refusalLog = {
        limit: count("refusal-log-limit", values["refusal-log-limit"], 20, 0),
        intervalMs: milliseconds("refusal-log-interval", values["refusal-log-interval"], 10_000, false),
        what: "refusals",
      };
      const auditLimits = {
        auditMaxBytes: count("audit-max-bytes", values["audit-max-bytes"], 16 * 1024 * 1024, 1024),
        auditAttemptsMaxBytes: count(
          "audit-attempts-max-bytes",
          values["audit-attempts-max-bytes"],
          4 * 1024 * 1024,
          1024,
        ),
      };
      const verifyPolicy =
        values["verify-policy"] === undefined
          ? undefined
          : await readPolicyFile(values["verify-policy"], io, "--verify-policy");
      const auditKeyFile = values["audit-key-file"];
      const auditKey = auditKeyFile === undefined ? undefined : await readAuditKeyFile("serve", auditKeyFile, io.cwd);
      const adminDirs = values["admin-dir"] ?? [];
      const readerDirs = values["reader-dir"] ?? [];
      if (!devMode && admins.length + readers.length + adminDirs.length + readerDirs.length === 0) {
        throw usageError(
          "serve",
          "no client may call the service: give --admin, --reader, --admin-dir or --reader-dir",
        );
      }

      const databaseUrl = databaseUrlOf("serve", values, io);
      const auditFlag = ["audit-key-file", "audit-max-bytes", "audit-attempts-max-bytes"].find(
        (flag) => values[flag as keyof typeof values] !== undefined,
      );
      if (databaseUrl !== undefined && auditFlag !== undefined) {
        throw usageError("serve", `--${auditFlag} applies to a data folder, not to --database`);
      }
      // With a database, the folder holds only the development PKI.
      const dataDir = resolve(io.cwd, values["data-dir"] ?? ".certgate/store");
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
          if (dataReal !== undefined && realpathOrUndefined(resolve(io.cwd, dir)) === dataReal) {
            throw usageError(
              "serve",
              `${flag} ${dir} is the data folder: every uploaded certificate would get that role; keep role certificates in a folder of their own`,
            );
          }
        }
      }
      const log = serveLogOf(io);
      // One writer per data folder: a second serve would race the first.
      // Replicas on one database share it by design: no lock then.
      let lock: DataFolderLock = { tookOverFrom: undefined, release() {} };
      try {
        if (databaseUrl === undefined) lock = lockDataFolder(dataDir);
      } catch (error) {
        const reason =
          error instanceof DataFolderLockedError ? error.message : `cannot lock it: ${errorMessage(error)}`;
        throw new CliError(`--data-dir ${dataDir}: ${reason}`, undefined, { cause: error });
      }
      if (lock.tookOverFrom !== undefined) {
        const gone = lock.tookOverFrom;
        log(
          `took over the data folder lock of pid ${gone.pid} on host ${gone.host} (since ${gone.started}), which is gone`,
          {
            pid: gone.pid,
            host: gone.host,
          },
          "warn",
        );
      }
      let tls: { cert: string; key: string; clientCa?: string };
      let dev: Awaited<ReturnType<typeof ensureDevPki>> | undefined;
      try {
        // Replicas on one database share the folder without a lock.
        dev = devMode ? await ensureDevPki(dataDir, { exclusive: databaseUrl === undefined }) : undefined;
        if (dev !== undefined) {
          admins.push(dev.certificates.admin.sha256);
          readers.push(dev.certificates.reader.sha256);
          tls = { cert: dev.pem.serverCert, key: dev.pem.serverKey };
        } else {
          const clientCa = values["client-ca"];
          tls = {
            cert: await readTextFile("--tls-cert", tlsCert!, io.cwd),
            key: await readTextFile("--tls-key", tlsKey!, io.cwd),
            ...(clientCa === undefined ? {} : { clientCa: await readTextFile("--client-ca", clientCa, io.cwd) }),
          };
          try {
            // Node checks the PEM and that the key belongs to the certificate.
            createSecureContext({ cert: tls.cert, key: tls.key });
          } catch (error) {
            throw new CliError(`--tls-cert ${tlsCert} / --tls-key ${tlsKey}: ${tlsConfigReason(error)}`, undefined, {
              cause: error,
            });
          }
        }
      } catch (error) {
        lock.release();
        throw error;
      }

      const stores: { close(): Promise<void> }[] = [];
      const refusals = createRateLimitedLog(log, refusalLog);
      let server: CertificateStoreServer | undefined;
      let reload: TlsReload | undefined;
      try {
        const folder = async (flag: string, directory: string) => {
          const store = await openFolderStore(
            flag,
            directory,
            io,
            log,
            flag === "" ? { ...auditLimits, ...(auditKey === undefined ? {} : { auditKey }) } : {},
          );
          stores.push(store);
          return store;
        };
        const store =
          databaseUrl === undefined
            ? await folder("", dataDir)
            : await openDatabaseStore("--database", databaseUrl, log);
        if (databaseUrl !== undefined) stores.push(store);
        const adminStores: CertificateStore[] = [];
        for (const dir of adminDirs) adminStores.push(await folder("--admin-dir", dir));
        const readerStores: CertificateStore[] = [];
        for (const dir of readerDirs) readerStores.push(await folder("--reader-dir", dir));
        // Opens the audit trail now, so that a damaged one is reported at start-up.
        try {
          await store.audit.list({ limit: 1 });
        } catch (error) {
          throw new CliError(`cannot read the audit trail: ${errorMessage(error)}`, undefined, { cause: error });
        }
        store.onChanges((changes) => {
          if (changes.length > 20) {
            // A folder replaced at once: one line, not one per file.
            const stored = changes.filter((change) => change.kind === "put").length;
            log(`stored ${stored}, deleted ${changes.length - stored} certificates`, {
              stored,
              deleted: changes.length - stored,
            });
            return;
          }
          for (const change of changes)
            log(`${change.kind === "put" ? "stored" : "deleted"} ${change.id}`, { id: change.id });
        });
        try {
          server = createCertificateStoreServer({
            store,
            ...tls,
            ...limits,
            console: values["no-console"] !== true,
            ...(verifyPolicy === undefined ? {} : { verifyPolicy }),
            onAuditError: (error) => log(`audit record not written: ${errorMessage(error)}`, {}, "error"),
            access: {
              admin: { thumbprints: admins, stores: adminStores },
              reader: { thumbprints: readers, stores: readerStores },
              onDecision: (event) => {
                if (event.kind === "refused") {
                  const who = event.thumbprint === undefined ? "no certificate" : `SHA-256 ${event.thumbprint}`;
                  refusals.log(`refused ${event.procedure} (${event.reason ?? "refused"}, ${who})`, {
                    procedure: event.procedure,
                    reason: event.reason ?? "refused",
                    ...(event.thumbprint === undefined ? {} : { sha256: event.thumbprint }),
                  });
                }
              },
            },
          });
        } catch (error) {
          const reason = errorMessage(error).replace(/^certificate store server: /, "");
          throw new CliError(reason.replace(/^clientCa /, `--client-ca ${values["client-ca"]} `));
        }
        if (!devMode) {
          const tlsServer = server.server;
          const clientCa = values["client-ca"];
          reload = followTlsFlags({
            files: {
              cert: ["--tls-cert", tlsCert!],
              key: ["--tls-key", tlsKey!],
              ca: clientCa === undefined ? undefined : ["--client-ca", clientCa],
            },
            cwd: io.cwd,
            log,
            apply: (contents) => tlsServer.setSecureContext({ ...contents }),
          });
        }
        let address;
        try {
          address = await server.listen(listen.port, listen.host);
        } catch (error) {
          const reason =
            (error as { code?: unknown }).code === "EADDRINUSE" ? "address already in use" : errorMessage(error);
          throw new CliError(`cannot listen on ${listen.text}: ${reason} (choose another with --listen)`);
        }
        // Clients should use the name they were told to listen on (it is what
        // the TLS certificate names); a wildcard is reached as localhost.
        const url =
          listen.kind === "name"
            ? `https://${listen.host}:${address.port}`
            : listen.kind === "wildcard"
              ? `https://localhost:${address.port}`
              : address.url;
        const stats = store.stats();
        const where = databaseUrl === undefined ? `data folder ${dataDir}` : `database ${redactUrl(databaseUrl)}`;
        log.out(`${where} (${stats.certificates} certificate${stats.certificates === 1 ? "" : "s"})`, {
          certificates: stats.certificates,
        });
        if (dev !== undefined) {
          printDevGuide(io, dev, url);
        }
        if (values["no-console"] !== true) await printConsoleGuide(io, url, dev);
        // Last, so that it also says that everything above is in place.
        log.out(`listening on ${url}`, { url });
        await stopped(io.signal);
        log("stopping");
      } finally {
        reload?.close();
        await server?.close();
        await Promise.all(stores.map((s) => s.close()));
        refusals.close();
        lock.release();
      }
      log("stopped");
      return ExitCode.ok;
    },
  ),
);

// A whole number flag of at least `min`.
function count(flag: string, text: string | undefined, fallback: number, min: number): number {
  return countFlag("serve", flag, text, fallback, min);
}

// A flag in seconds (fractions allowed), as milliseconds; 0 only if `zeroOff`.
function milliseconds(flag: string, text: string | undefined, fallback: number, zeroOff: boolean): number {
  return secondsFlag("serve", flag, text, fallback, zeroOff);
}

// A missing folder is reported when it is opened, with its flag.
function realpathOrUndefined(folder: string): string | undefined {
  try {
    return realpathSync(folder);
  } catch {
    return undefined;
  }
}

function stopped(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
    } else {
      signal.addEventListener("abort", () => resolve(), { once: true });
    }
  });
}
