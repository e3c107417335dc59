import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { watchFileFolders } from "./file-folder-watch.js";
import { meterOf, observeGauge, type MetricsOptions, type MetricsRegistration } from "./metrics.js";
import {
  checkTlsFileSet,
  readTlsFileSet,
  type TlsCertificateInfo,
  type TlsFileContents,
  type TlsFileSetCheck,
} from "./tls-file-set.js";

export type { TlsCertificateInfo, TlsFileContents } from "./tls-file-set.js";

/**
 * TlsFilesOptions configures `createTlsFiles`: the files (paths to PEM) and
 * how they are followed.
 */
export interface TlsFilesOptions extends MetricsOptions {
  /** The certificate chain file, leaf first. Required. */
  cert: string;
  /** The private key file of the leaf. Required. */
  key: string;
  /** A CA certificate file (one or more certificates). By default, none. */
  ca?: string;
  /**
   * How long to wait after the last change seen in a watched folder before
   * reading the files, in milliseconds: a writer usually touches several
   * files in a row. By default, 100.
   */
  debounceMs?: number;
  /**
   * How long a set that is half written, missing or whose key does not
   * match is retried (every `debounceMs` doubled, up to a second) before it
   * is refused and logged, in milliseconds. The old set stays in use
   * meanwhile and afterwards. By default, 5000.
   */
  settleMs?: number;
  /**
   * Re-read the files this often even without a change seen, in
   * milliseconds, for file systems whose changes are not reported (network
   * mounts); 0 never. By default, 60000.
   */
  pollIntervalMs?: number;
  /**
   * Told of each reload and each refused set. By default, each is written
   * to stderr as one line starting with "certgate:".
   */
  onEvent?: (event: TlsFilesEvent) => void;
  /**
   * The `certgate.tls.name` attribute of the not-after metric, telling apart
   * several sets of one process. By default, the certificate file's path.
   */
  metricsName?: string;
}

/**
 * TlsFilesEvent is a reload (`reloaded`) or a set that was not loaded
 * (`refused`, with the reason; the previous set stays in use).
 */
export type TlsFilesEvent =
  | { readonly kind: "reloaded"; readonly certificate: TlsCertificateInfo; readonly message: string }
  | {
      readonly kind: "refused";
      /** `incomplete`: a file is missing, half written or unreadable; `mismatch`: the files do not form a set. */
      readonly problem: "incomplete" | "mismatch";
      readonly reason: string;
      readonly message: string;
    };

/**
 * TlsFilesReload is what `reload()` found: a new set loaded, the same set
 * again, or a set refused (the previous one kept).
 */
export type TlsFilesReload =
  | { readonly kind: "reloaded"; readonly certificate: TlsCertificateInfo }
  | { readonly kind: "unchanged" }
  | { readonly kind: "refused"; readonly problem: "incomplete" | "mismatch"; readonly reason: string };

/**
 * TlsFiles is a certificate, key and CA followed on disk and reloaded as a
 * set: its current set is always one that was whole and consistent.
 */
export interface TlsFiles {
  /** The current set, for `tls.createSecureContext`, `server.setSecureContext` and TLS options. */
  secureContextOptions(): TlsFileContents;
  /** The current leaf certificate. */
  readonly certificate: TlsCertificateInfo;
  /** The paths followed, resolved. */
  readonly paths: { readonly cert: string; readonly key: string; readonly ca?: string };
  /**
   * Calls `listener` with each new set after it is loaded; returns the
   * function that removes it. A listener that throws does not stop the others.
   */
  onChange(listener: (options: TlsFileContents) => void): () => void;
  /**
   * Reads the files now (as on `SIGHUP`) and loads them if they form a new
   * set; a refused set is reported at once, without waiting to settle.
   */
  reload(): Promise<TlsFilesReload>;
  /** Stops watching; the current set stays readable. */
  close(): void;
}

const defaultLog = (event: TlsFilesEvent) => console.error(`certgate: ${event.message}`);

/**
 * createTlsFiles reads a certificate, its key and optionally a CA file,
 * then follows them: it watches their folders (and those of their symlink
 * targets), so that an in-place write, an editor's rename over the file
 * and Kubernetes' `..data` symlink swap are all seen, waits `debounceMs`,
 * re-reads the three files and loads them together only when each is whole
 * and the key belongs to the certificate. A half-written or mismatched set
 * is retried for `settleMs`, then refused with a log line; the previous set
 * stays in use. The current certificate's not-after is the
 * `certgate.tls.certificate.not_after` gauge (seconds since the epoch).
 *
 * It throws at start-up, naming the file, when the files do not form a set.
 *
 * @example
 * const tls = createTlsFiles({ cert: "/etc/tls/tls.crt", key: "/etc/tls/tls.key" });
 * const server = http2.createSecureServer({ ...tls.secureContextOptions() }, handler);
 * watchServerTls(server, tls);
 */
export function createTlsFiles(options: TlsFilesOptions): TlsFiles {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("certgate: createTlsFiles() needs options: { cert, key, ca? } (file paths)");
  }
  for (const name of ["cert", "key", "ca"] as const) {
    const value = options[name];
    if (value === undefined && name === "ca") continue;
    if (typeof value !== "string" || value === "") {
      throw new TypeError(`certgate: createTlsFiles() options.${name} must be a file path`);
    }
  }
  const debounceMs = duration("debounceMs", options.debounceMs, 100);
  const settleMs = duration("settleMs", options.settleMs, 5000);
  const pollIntervalMs = duration("pollIntervalMs", options.pollIntervalMs, 60_000);
  const log = options.onEvent ?? defaultLog;
  const paths = {
    cert: resolve(options.cert),
    key: resolve(options.key),
    ...(options.ca === undefined ? {} : { ca: resolve(options.ca) }),
  };
  const first = checkTlsFileSet(readNow(paths), paths);
  if (first.kind !== "ok") {
    throw new TypeError(`certgate: createTlsFiles(): ${first.reason}`);
  }
  let current = first;
  const listeners = new Set<(options: TlsFileContents) => void>();
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let failingSince: number | undefined;
  let retryMs = debounceMs;
  let refusedKey: string | undefined;
  let running: Promise<TlsFilesReload> | undefined;
  let again = false;

  const meter = meterOf(options.meterProvider);
  const attributes = { "certgate.tls.name": options.metricsName ?? options.cert };
  const gauge: MetricsRegistration | undefined =
    meter === undefined
      ? undefined
      : observeGauge(
          meter,
          "certgate.tls.certificate.not_after",
          { description: "When the TLS certificate in use stops being valid (seconds since the epoch).", unit: "s" },
          (result) => result.observe(Math.floor(current.certificate.notAfter.getTime() / 1000), attributes),
        );

  const schedule = (ms: number) => {
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(() => void attempt(false), ms);
    timer.unref();
  };
  // A change seen restarts the wait, not the settling time: a folder that
  // keeps changing must not keep a bad set from being reported.
  const onFolderEvent = () => {
    retryMs = debounceMs;
    schedule(debounceMs);
  };
  const load = async (immediate: boolean): Promise<TlsFilesReload> => {
    const check: TlsFileSetCheck = await readTlsFileSet(paths);
    if (closed) return { kind: "unchanged" };
    folders.follow();
    if (check.kind === "ok") {
      failingSince = undefined;
      retryMs = debounceMs;
      refusedKey = undefined;
      if (sameContents(check.contents, current.contents)) return { kind: "unchanged" };
      current = check;
      const c = check.certificate;
      report({
        kind: "reloaded",
        certificate: c,
        message: `reloaded TLS certificate ${paths.cert} (serial ${c.serialNumber}, valid until ${c.notAfter.toISOString()})`,
      });
      for (const listener of listeners) {
        try {
          listener(check.contents);
        } catch {
          // One failing listener must not keep the new set from the others.
        }
      }
      return { kind: "reloaded", certificate: c };
    }
    const now = Date.now();
    failingSince ??= now;
    if (!immediate && now - failingSince < settleMs) {
      // A writer may be in the middle of it: look again soon.
      retryMs = Math.min(retryMs * 2, 1000);
      schedule(retryMs);
      return { kind: "unchanged" };
    }
    // The next change gets a settling time of its own.
    failingSince = undefined;
    const key = `${check.kind}:${check.reason}`;
    if (immediate || key !== refusedKey) {
      refusedKey = key;
      report({
        kind: "refused",
        problem: check.kind,
        reason: check.reason,
        message: `kept the TLS certificate in use (serial ${current.certificate.serialNumber}); refused the files: ${check.reason}`,
      });
    }
    return { kind: "refused", problem: check.kind, reason: check.reason };
  };
  const report = (event: TlsFilesEvent) => {
    try {
      log(event);
    } catch {
      // A failing log must not change what is loaded.
    }
  };
  // One read at a time; a change seen during a read is read again after it.
  const attempt = (immediate: boolean): Promise<TlsFilesReload> => {
    if (running !== undefined) {
      if (immediate) return running.then(() => attempt(true));
      again = true;
      return running;
    }
    running = load(immediate).finally(() => {
      running = undefined;
      if (again && !closed) {
        again = false;
        schedule(debounceMs);
      }
    });
    return running;
  };

  const folders = watchFileFolders(Object.values(paths), onFolderEvent);
  const poll = pollIntervalMs > 0 ? setInterval(() => void attempt(false), pollIntervalMs) : undefined;
  poll?.unref();

  return {
    secureContextOptions: () => current.contents,
    get certificate() {
      return current.certificate;
    },
    paths,
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    reload: () => attempt(true),
    close() {
      closed = true;
      clearTimeout(timer);
      clearInterval(poll);
      folders.close();
      gauge?.remove();
    },
  };
}

function readNow(paths: { cert: string; key: string; ca?: string }): TlsFileContents {
  const read = (path: string) => {
    try {
      return readFileSync(path, "utf8");
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new TypeError(`certgate: createTlsFiles(): cannot read ${path}: ${code ?? (error as Error).message}`, {
        cause: error,
      });
    }
  };
  const cert = read(paths.cert);
  const key = read(paths.key);
  return paths.ca === undefined ? { cert, key } : { cert, key, ca: read(paths.ca) };
}

function sameContents(a: TlsFileContents, b: TlsFileContents): boolean {
  return a.cert === b.cert && a.key === b.key && a.ca === b.ca;
}

function duration(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value > 2 ** 31 - 1) {
    throw new TypeError(`certgate: createTlsFiles() options.${name} must be a number of milliseconds, got ${value}`);
  }
  return value;
}
