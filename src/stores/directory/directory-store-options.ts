import * as fs from "node:fs";
import { storeMetricsOf, type StoreMetrics, type StoreMetricsOptions } from "../../core/metrics.js";
import { clockOf, positiveInteger } from "../../core/options.js";
import { defaultAuditAttemptsMaxBytes, defaultAuditMaxBytes } from "./audit-file.js";
import { checkFolder } from "./store-io.js";
import type { DirectoryStoreProblem } from "./types.js";
import { warnProblems } from "./warn-problems.js";

/**
 * DirectoryStoreOptions configures `createDirectoryStore`.
 */
export interface DirectoryStoreOptions extends StoreMetricsOptions {
  /**
   * The folder of uploaded certificates: `.pem`, `.crt`, `.cer` and `.der`
   * files, PEM (bundles too) or DER. Each certificate in it is admitted by
   * its own SHA-256 thumbprint, CA certificates included, which never act
   * as issuers here. A file's id is its name less the extension (`team#2`
   * for the second certificate of a bundle); of two files with one id, the
   * first of `.pem`, `.crt`, `.cer`, `.der` is loaded and the other
   * reported. Sub-folders and hidden files are not read. Required.
   */
  directory: string;
  /**
   * A folder of CA certificates that admit every leaf certificate they
   * issued (signature, validity, cA and keyCertSign checked). It must not be
   * `directory` itself; a sub-folder of it is fine. By default, none: only
   * the leaf certificates in `directory` are admitted.
   */
  caDirectory?: string;
  /** Files larger than this (bytes) are skipped and reported. By default, 1 MiB. */
  maxFileBytes?: number;
  /** Watch the folders with `fs.watch` for changes. By default, true. */
  watch?: boolean;
  /** How long to gather change events before applying them, ms. By default, 25. */
  debounceMs?: number;
  /**
   * How often to re-check every file's signature (size, times, inode), ms, for
   * filesystems where `fs.watch` misses events. The pause is stretched to
   * 20 times the last rescan's duration, so big folders cost at most ~5% of
   * a core. 0 turns it off. By default, 2000.
   */
  rescanIntervalMs?: number;
  /**
   * Called for each new problem: a skipped file, or a folder that went away.
   * Errors it throws are ignored. By default, a process warning is emitted.
   */
  onProblem?: (problem: DirectoryStoreProblem) => void;
  /** The current time for the CA checks, for tests. By default, `Date.now`. */
  clock?: () => number | Date;
  /**
   * Rotate the audit trail of changes (`audit`, the file
   * `.certgate-audit.jsonl` in `directory`) before it grows beyond this many
   * bytes; the previous file is kept as `.certgate-audit.1.jsonl`, the one
   * before it dropped. By default, 16 MiB (some 40,000 records).
   */
  auditMaxBytes?: number;
  /**
   * The same for the trail of refused and failed attempts
   * (`.certgate-audit-attempts.jsonl`), rotated on its own so that refusals
   * never push a change out. By default, 4 MiB (some 8,000 refusals).
   */
  auditAttemptsMaxBytes?: number;
  /**
   * The key of the audit trail's keyed digests (HMAC-SHA-256), at least 16
   * bytes: without it, someone who can write the files can rewrite a whole
   * tail of the chain undetected (see docs/audit.md). By default, none.
   */
  auditKey?: Uint8Array;
}

/**
 * ResolvedDirectoryOptions are the checked options of `createDirectoryStore`,
 * defaults filled in.
 */
export interface ResolvedDirectoryOptions {
  readonly directory: string;
  readonly caDirectory: string | undefined;
  readonly maxFileBytes: number;
  readonly debounceMs: number;
  readonly rescanIntervalMs: number;
  readonly now: () => number;
  readonly onProblem: (problem: DirectoryStoreProblem) => void;
  readonly metrics: StoreMetrics | undefined;
  readonly auditMaxBytes: number;
  readonly auditAttemptsMaxBytes: number;
}

const defaultMaxFileBytes = 1024 * 1024;

/**
 * resolveDirectoryOptions checks the options of `createDirectoryStore`,
 * throwing an error that names the option or the folder.
 */
export function resolveDirectoryOptions(options: DirectoryStoreOptions): ResolvedDirectoryOptions {
  const directory = checkFolder(options.directory, "directory");
  const caDirectory = options.caDirectory === undefined ? undefined : checkFolder(options.caDirectory, "caDirectory");
  if (caDirectory !== undefined && fs.realpathSync(caDirectory) === fs.realpathSync(directory)) {
    throw new Error(
      `certgate: caDirectory must not be the certificate folder itself (${directory}): a CA certificate among the leaf certificates would admit everything it issued`,
    );
  }
  const where = "certgate: createDirectoryStore() options";
  const maxFileBytes = positiveInteger(`${where}.maxFileBytes`, options.maxFileBytes, defaultMaxFileBytes, 1);
  const debounceMs = positiveInteger(`${where}.debounceMs`, options.debounceMs, 25, 0);
  const rescanIntervalMs = positiveInteger(`${where}.rescanIntervalMs`, options.rescanIntervalMs, 2000, 0);
  const now = clockOf(options.clock);
  const onProblem = options.onProblem ?? warnProblems();
  const metrics = storeMetricsOf(options, "folder");
  const auditMaxBytes = positiveInteger(`${where}.auditMaxBytes`, options.auditMaxBytes, defaultAuditMaxBytes, 1024);
  const auditAttemptsMaxBytes = positiveInteger(
    `${where}.auditAttemptsMaxBytes`,
    options.auditAttemptsMaxBytes,
    defaultAuditAttemptsMaxBytes,
    1024,
  );
  if (options.auditKey !== undefined && options.auditKey.length < 16) {
    throw new Error(`${where}.auditKey: give at least 16 bytes of key`);
  }
  return {
    directory,
    caDirectory,
    maxFileBytes,
    debounceMs,
    rescanIntervalMs,
    now,
    onProblem,
    metrics,
    auditMaxBytes,
    auditAttemptsMaxBytes,
  };
}
