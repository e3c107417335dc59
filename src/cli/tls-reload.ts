import { resolve } from "node:path";
import { createTlsFiles, type TlsFileContents, type TlsFiles } from "../core/tls-files.js";
import { CliError, errorMessage } from "./common.js";
import type { ServeLog } from "./serve-log.js";

/**
 * TlsFlagFiles are the TLS files a long-running command was given, each
 * with its flag for messages: `[flag, path]`.
 */
export interface TlsFlagFiles {
  readonly cert: readonly [flag: string, path: string];
  readonly key: readonly [flag: string, path: string];
  readonly ca?: readonly [flag: string, path: string] | undefined;
}

/**
 * Hangup is where `SIGHUP` comes from; by default, the process.
 */
export interface Hangup {
  on(signal: "SIGHUP", listener: () => void): unknown;
  off(signal: "SIGHUP", listener: () => void): unknown;
}

/**
 * TlsReloadOptions configures `followTlsFlags`.
 */
export interface TlsReloadOptions {
  /** The files and their flags. */
  readonly files: TlsFlagFiles;
  /** Relative paths are read from here. */
  readonly cwd: string;
  /** Where each reload and refused set is logged. */
  readonly log: ServeLog;
  /**
   * Hands a new set to the server (such as `server.setSecureContext`). By
   * default, nothing: for files whose user follows them itself (a client
   * certificate transport presents the new set on its next connection).
   */
  readonly apply?: (contents: TlsFileContents) => void;
  /** Where `SIGHUP` comes from. By default, the process. */
  readonly hangup?: Hangup;
  /** The name the certificate's not-after gauge carries. By default, "serve". */
  readonly metricsName?: string;
}

/**
 * TlsReload is a running `followTlsFlags`; `close()` it when the command stops.
 */
export interface TlsReload {
  readonly files: TlsFiles;
  close(): void;
}

/**
 * followTlsFlags makes a long-running command (`certgate serve`, and any
 * other that serves TLS) reload its `--tls-cert`, `--tls-key` and
 * `--client-ca` files when they change on disk and on `SIGHUP`, handing
 * each consistent new set to `apply` and logging each reload and each
 * refused set; the set in use stays until a consistent one replaces it.
 * Throws a `CliError` naming the flags when the files do not form a set.
 */
export function followTlsFlags(options: TlsReloadOptions): TlsReload {
  const { files: flags, log } = options;
  const named = (text: string) =>
    [flags.cert, flags.key, ...(flags.ca === undefined ? [] : [flags.ca])].reduce(
      (message, [flag, path]) => message.split(resolve(options.cwd, path)).join(`${flag} ${path}`),
      text,
    );
  let files: TlsFiles;
  try {
    files = createTlsFiles({
      cert: resolve(options.cwd, flags.cert[1]),
      key: resolve(options.cwd, flags.key[1]),
      ...(flags.ca === undefined ? {} : { ca: resolve(options.cwd, flags.ca[1]) }),
      metricsName: options.metricsName ?? "serve",
      onEvent(event) {
        if (event.kind === "reloaded") {
          const c = event.certificate;
          log(named(event.message), { serial: c.serialNumber, notAfter: c.notAfter.toISOString() }, "info");
        } else {
          log(named(event.message), { problem: event.problem, reason: named(event.reason) }, "warn");
        }
      },
    });
  } catch (error) {
    throw new CliError(named(errorMessage(error).replace(/^certgate: createTlsFiles\(\): /, "")), undefined, {
      cause: error,
    });
  }
  const apply = options.apply ?? (() => {});
  const stop = files.onChange((contents) => {
    try {
      apply(contents);
    } catch (error) {
      log(`the server did not take the new TLS files: ${errorMessage(error)}`, {}, "error");
    }
  });
  const hangup = options.hangup ?? process;
  // A command may follow two sets (authz's server files and its store
  // client's): each line names its flags.
  const which = [flags.cert, flags.key, ...(flags.ca === undefined ? [] : [flags.ca])].map(([flag]) => flag).join(", ");
  const onHangup = () => {
    log(`SIGHUP: reading the TLS files (${which})`, {}, "info");
    void files.reload().then((result) => {
      if (result.kind === "unchanged") log(`SIGHUP: the TLS files are unchanged (${which})`, {}, "info");
    });
  };
  hangup.on("SIGHUP", onHangup);
  return {
    files,
    close() {
      hangup.off("SIGHUP", onHangup);
      stop();
      files.close();
    },
  };
}
