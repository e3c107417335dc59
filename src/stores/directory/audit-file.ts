import * as fs from "node:fs";
import * as path from "node:path";
import type { AuditLog, AuditRecord } from "../../core/audit.js";
import { syncDirectory } from "./atomic-write.js";
import { formatAuditLine, genesisDigest, parseAuditLine } from "./audit-line.js";
import { auditFilePairs, listAuditFiles, readAuditLines, type AuditFilePair } from "./audit-files.js";

export {
  auditFileName,
  auditPreviousFileName,
  auditAttemptsFileName,
  auditAttemptsPreviousFileName,
} from "./audit-files.js";
export { formatAuditLine, parseAuditLine } from "./audit-line.js";

/**
 * defaultAuditMaxBytes is the size at which the file of changes is rotated:
 * 16 MiB, some 40,000 records.
 */
export const defaultAuditMaxBytes = 16 * 1024 * 1024;

/**
 * defaultAuditAttemptsMaxBytes is the size at which the file of refused and
 * failed attempts is rotated: 4 MiB, some 8,000 refusals.
 */
export const defaultAuditAttemptsMaxBytes = 4 * 1024 * 1024;

/**
 * AuditFileOptions configures `createAuditFile`.
 */
export interface AuditFileOptions {
  /** The folder of the files. */
  readonly directory: string;
  /** Rotate the file of changes (`ok` records) before it would grow beyond this many bytes. */
  readonly maxBytes: number;
  /** Rotate the file of attempts (refused, failed, suppressed) before it would grow beyond this. By default, 4 MiB. */
  readonly attemptsMaxBytes?: number;
  /** The key of keyed digests (HMAC-SHA-256). By default, digests are plain SHA-256. */
  readonly key?: Uint8Array;
  /** Told of each damaged line found when the files are first opened (a torn last line after a crash). */
  readonly onDamagedLine: (file: string, line: number, reason: string) => void;
  /**
   * Told when a file changed under the writer: renamed, replaced or removed
   * (the writer reopens it), cut short, or given a torn tail (sealed); and
   * when the writer rotated it, with the count of records dropped. By
   * default, nothing.
   */
  readonly onFileChanged?: (file: string, reason: string) => void;
}

/**
 * AuditFile is the folder store's `AuditLog`, which can be closed.
 */
export interface AuditFile extends AuditLog {
  close(): Promise<void>;
}

interface OpenFile {
  readonly handle: fs.promises.FileHandle;
  readonly dev: number;
  readonly ino: number;
  size: number;
}

interface Stream {
  readonly pair: AuditFilePair;
  readonly maxBytes: number;
  /** The digest of the last record written or read: the next record's `prev`. */
  last: string;
  /** How many records the previous and the current file hold, for the count of a rotation. */
  records: { previous: number; current: number };
  file: OpenFile | undefined;
}

/**
 * createAuditFile returns the folder store's `AuditLog`: append-only files
 * of JSON lines in the data folder, each record written with one `write` and
 * fsync'd before `record` resolves. Records of changes (`ok`) and records of
 * attempts (refused, failed, suppressed) go to two files, each rotated on its
 * own, so that refusals, which anyone with a TLS connection can cause, never
 * push a change out of the trail. Each record carries the digest of the one
 * before it in its file pair (a hash chain, see `verifyAuditTrail`);
 * sequence numbers are shared.
 *
 * Before each append the writer checks that the path is still the file it
 * holds open (device and inode): a file renamed, replaced or removed under
 * it is reopened (a new one created), and a tail cut or torn by someone else
 * is sealed with a newline, so that the record starts a line of its own. A
 * failed append rejects, which fails the change it records.
 *
 * A damaged line is skipped, with a warning when the files are first opened
 * and counted in the listings that pass it. Listing reads through its own
 * file handles, outside the write queue: it never delays a write.
 *
 * One process writes the folder at a time (`certgate serve` locks it).
 */
export function createAuditFile(options: AuditFileOptions): AuditFile {
  const { directory, key } = options;
  const pairs = auditFilePairs(directory);
  const streams = {
    changes: {
      pair: pairs.changes,
      maxBytes: options.maxBytes,
      last: genesisDigest,
      records: { previous: 0, current: 0 },
      file: undefined,
    } as Stream,
    attempts: {
      pair: pairs.attempts,
      maxBytes: options.attemptsMaxBytes ?? defaultAuditAttemptsMaxBytes,
      last: genesisDigest,
      records: { previous: 0, current: 0 },
      file: undefined,
    } as Stream,
  };
  let sequence = 0;
  let queue: Promise<unknown> = Promise.resolve();
  let started: Promise<void> | undefined;

  function serial<T>(task: () => Promise<T>): Promise<T> {
    const run = queue.then(task);
    queue = run.catch(() => undefined);
    return run;
  }

  function changed(file: string, reason: string): void {
    try {
      options.onFileChanged?.(file, reason);
    } catch {
      // A failing hook must not stop the log.
    }
  }

  // Reads every file once: the last sequence number and each chain's tail.
  async function start(): Promise<void> {
    for (const stream of [streams.changes, streams.attempts]) {
      for (const which of ["previous", "current"] as const) {
        const file = stream.pair[which];
        await readAuditLines(file, true, (line, number) => {
          const parsed = parseAuditLine(line, key);
          if (parsed.kind === "damaged") {
            try {
              options.onDamagedLine(file, number, parsed.reason);
            } catch {
              // A failing hook must not stop the log.
            }
            return true;
          }
          sequence = Math.max(sequence, parsed.event.sequence);
          stream.last = parsed.digest;
          stream.records[which]++;
          return true;
        });
      }
    }
  }

  function ensureStarted(): Promise<void> {
    started ??= start();
    started.catch(() => {
      started = undefined;
    });
    return started;
  }

  async function openFile(stream: Stream): Promise<OpenFile> {
    const handle = await fs.promises.open(stream.pair.current, "a+", 0o600);
    try {
      const stat = await handle.stat();
      const file: OpenFile = { handle, dev: stat.dev, ino: stat.ino, size: stat.size };
      if (stat.size === 0) await syncDirectory(directory);
      await sealTail(stream, file);
      return file;
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  // Seals a torn tail with a newline, so that the next record is a line of its own.
  async function sealTail(stream: Stream, file: OpenFile): Promise<void> {
    if (file.size === 0) return;
    const last = Buffer.alloc(1);
    await file.handle.read(last, 0, 1, file.size - 1);
    if (last[0] === 0x0a) return;
    await file.handle.write("\n");
    await file.handle.datasync();
    file.size++;
    changed(stream.pair.current, "a torn last line was sealed");
  }

  async function closeFile(stream: Stream): Promise<void> {
    const file = stream.file;
    stream.file = undefined;
    await file?.handle.close().catch(() => undefined);
  }

  // The open file of a stream, reopened when the path no longer names it,
  // its tail sealed when someone else cut or tore it.
  async function fileOf(stream: Stream): Promise<OpenFile> {
    let file = stream.file;
    if (file !== undefined) {
      let now: fs.Stats | undefined;
      try {
        now = await fs.promises.stat(stream.pair.current);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      }
      if (now === undefined || now.ino !== file.ino || now.dev !== file.dev) {
        changed(
          stream.pair.current,
          now === undefined
            ? "the file was removed or renamed while open: a new file was created"
            : "the file was replaced while open: the new file is written",
        );
        await closeFile(stream);
        file = undefined;
        if (now === undefined) stream.records.current = 0;
      } else if (now.size !== file.size) {
        if (now.size < file.size)
          changed(stream.pair.current, `the file was cut from ${file.size} to ${now.size} bytes`);
        file.size = now.size;
        await sealTail(stream, file);
      }
    }
    if (file === undefined) {
      file = await openFile(stream);
      stream.file = file;
    }
    return file;
  }

  return {
    record(record: AuditRecord) {
      return serial(async () => {
        await ensureStarted();
        const stream = record.result === "ok" ? streams.changes : streams.attempts;
        let file = await fileOf(stream);
        let { line, digest } = formatAuditLine({ ...record, sequence: sequence + 1 }, stream.last, key);
        if (file.size > 0 && file.size + Buffer.byteLength(line) > stream.maxBytes) {
          await closeFile(stream);
          await fs.promises.rename(stream.pair.current, stream.pair.previous);
          await syncDirectory(directory);
          const dropped = stream.records.previous;
          stream.records = { previous: stream.records.current, current: 0 };
          changed(
            stream.pair.current,
            `rotated into ${path.basename(stream.pair.previous)}; ${dropped} older ${stream.pair.name === "changes" ? "records of changes" : "records of refused and failed attempts"} dropped`,
          );
          file = await fileOf(stream);
          ({ line, digest } = formatAuditLine({ ...record, sequence: sequence + 1 }, stream.last, key));
        }
        try {
          await file.handle.write(line);
          await file.handle.datasync();
        } catch (error) {
          // A part of the line may be on disk: the next append seals it.
          await closeFile(stream);
          throw error;
        }
        file.size += Buffer.byteLength(line);
        stream.last = digest;
        stream.records.current++;
        sequence++;
      });
    },
    async list(query) {
      await ensureStarted();
      return listAuditFiles([pairs.changes, pairs.attempts], query, key);
    },
    close() {
      return serial(async () => {
        await closeFile(streams.changes);
        await closeFile(streams.attempts);
      });
    },
  };
}
