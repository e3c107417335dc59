import type { StoreMetricsOptions } from "../../core/metrics.js";
import type { DirectoryStoreProblem } from "./types.js";

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
