import { resolve } from "node:path";
import { normalizeThumbprint } from "../core/thumbprint.js";
import { createCertificateStoreServer, type CertificateStoreServer } from "../service/certificate-store-server.js";
import type { CertificateStore } from "../core/store.js";
import { databaseUrlOf, openDatabaseStore, redactUrl } from "./serve-database.js";
import { readAuditKeyFile } from "./audit-key.js";
import { CliError, defineCommand, errorMessage, expectPositionals, ExitCode, usageError } from "./common.js";
import type { DevPki } from "./dev-pki.js";
import { createRateLimitedLog } from "./rate-limited-log.js";
import { printConsoleGuide } from "./serve-console.js";
import { openServeDataFolder } from "./serve-data-folder.js";
import { printDevGuide } from "./serve-guide.js";
import { serveHelp } from "./serve-help.js";
import { readServeTls, type ServeTls } from "./serve-tls.js";
import { followTlsFlags, type TlsReload } from "./tls-reload.js";
import { serveLogOf, withLogFormat } from "./serve-log.js";
import { refusalLogFlags, refusalLogOf, stopped, tlsFilesOf } from "./server-command.js";
import { countFlag, parseListen, secondsFlag } from "./listen-flags.js";
import { openFolderStore, readPolicyFile } from "./store-sources.js";

/**
 * serveCommand is `certgate serve`: the certificate store service over a
 * directory store, until SIGINT or SIGTERM.
 */
export const serveCommand = withLogFormat(
  defineCommand(
    {
      name: "serve",
      help: serveHelp,
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
        ...refusalLogFlags,
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
      const { tlsCert, tlsKey } = tlsFilesOf("serve", values);
      const devMode = tlsCert === undefined && tlsKey === undefined;
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
      const refusalLog = refusalLogOf("serve", values);
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
      const dataDir = resolve(io.cwd, values["data-dir"] ?? ".certgate/store");
      const log = serveLogOf(io);
      const lock = await openServeDataFolder({
        dataDir,
        databaseUrl,
        devMode,
        adminDirs,
        readerDirs,
        cwd: io.cwd,
        log,
      });
      let tls: ServeTls;
      let dev: DevPki | undefined;
      try {
        // Replicas on one database share the folder without a lock.
        ({ tls, dev } = await readServeTls({
          devMode,
          dataDir,
          exclusive: databaseUrl === undefined,
          tlsCert,
          tlsKey,
          clientCa: values["client-ca"],
          cwd: io.cwd,
        }));
        if (dev !== undefined) {
          admins.push(dev.certificates.admin.sha256);
          readers.push(dev.certificates.reader.sha256);
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
