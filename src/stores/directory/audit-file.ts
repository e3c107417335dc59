import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { createInterface } from "node:readline";
import { auditEventMatches, type AuditEvent, type AuditLog, type AuditRecord } from "../../core/audit.js";
import { syncDirectory } from "./atomic-write.js";

/**
 * auditFileName is the folder store's audit trail in its data folder; hidden,
 * so the store never reads it as a certificate. `auditPreviousFileName` holds
 * the records before the last rotation.
 */
export const auditFileName = ".certgate-audit.jsonl";
export const auditPreviousFileName = ".certgate-audit.1.jsonl";

/**
 * defaultAuditMaxBytes is the size at which the audit file is rotated: 16 MiB,
 * some 40,000 records.
 */
export const defaultAuditMaxBytes = 16 * 1024 * 1024;

/**
 * AuditFileOptions configures `createAuditFile`.
 */
export interface AuditFileOptions {
  /** The folder of the two files. */
  readonly directory: string;
  /** Rotate the file before it would grow beyond this many bytes. */
  readonly maxBytes: number;
  /** Told of each damaged line found when the file is first opened (a torn last line after a crash). */
  readonly onDamagedLine: (file: string, line: number, reason: string) => void;
}

// Each line is `{"sum":"<16 hex>","event":<event JSON>}`: the sum (the first
// 64 bits of the SHA-256 of the event's text) tells a complete record from a
// torn or damaged one, and the line stays JSON for jq.
const head = '{"sum":"';
const middle = '","event":';
const sumLength = 16;
const eventStart = head.length + sumLength + middle.length;

function sumOf(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, sumLength);
}

/**
 * formatAuditLine returns the line (with its newline) of one event.
 */
export function formatAuditLine(event: AuditEvent): string {
  const text = JSON.stringify({
    seq: event.sequence,
    time: event.time.toISOString(),
    action: event.action,
    result: event.result,
    code: event.code,
    reason: event.reason,
    actor: { subject: event.actor.subject, sha256: event.actor.sha256 },
    id: event.certificateId,
    sha256: event.sha256,
  });
  return `${head}${sumOf(text)}${middle}${text}}\n`;
}

/**
 * parseAuditLine reads one line (without its newline) back into an event,
 * or says why it cannot: a torn line, a wrong sum, a wrong shape.
 */
export function parseAuditLine(line: string): AuditEvent | { readonly damaged: string } {
  if (!line.startsWith(head) || line.slice(head.length + sumLength, eventStart) !== middle || !line.endsWith("}")) {
    return { damaged: "not a complete record (torn or damaged)" };
  }
  const text = line.slice(eventStart, -1);
  if (sumOf(text) !== line.slice(head.length, head.length + sumLength)) {
    return { damaged: "checksum mismatch (torn or damaged)" };
  }
  try {
    const e = JSON.parse(text) as Record<string, unknown>;
    const actor = e.actor as Record<string, unknown> | null;
    const strings = [e.action, e.result, e.code, e.reason, e.id, e.sha256, actor?.subject, actor?.sha256];
    const time = new Date(String(e.time));
    if (!Number.isSafeInteger(e.seq) || strings.some((s) => typeof s !== "string") || Number.isNaN(time.getTime())) {
      return { damaged: "not an audit record" };
    }
    return Object.freeze({
      sequence: e.seq as number,
      time,
      action: e.action as AuditEvent["action"],
      result: e.result as AuditEvent["result"],
      code: e.code as string,
      reason: e.reason as string,
      actor: Object.freeze({ subject: actor!.subject as string, sha256: actor!.sha256 as string }),
      certificateId: e.id as string,
      sha256: e.sha256 as string,
    });
  } catch {
    return { damaged: "not JSON" };
  }
}

/**
 * createAuditFile returns the folder store's `AuditLog`: an append-only file
 * of JSON lines in the data folder, each record written with one `write` and
 * fsync'd before `record` resolves. The file is opened on first use, so a
 * process that only reads certificates never touches it.
 *
 * A line that a crash tore (the last one) or that was damaged is skipped
 * with a warning when the file is opened, and a newline seals a torn tail so
 * that later records start on a line of their own: nothing before it is
 * lost. When the file would grow beyond `maxBytes`, it becomes
 * `auditPreviousFileName` (replacing the one before) and a new file starts:
 * the trail holds the newest `maxBytes` to 2 × `maxBytes` of records.
 *
 * One process writes the folder at a time (`certgate serve` locks it).
 */
export function createAuditFile(options: AuditFileOptions): AuditLog & { close(): Promise<void> } {
  const current = path.join(options.directory, auditFileName);
  const previous = path.join(options.directory, auditPreviousFileName);
  let queue: Promise<unknown> = Promise.resolve();
  let opened: Promise<{ handle: fs.promises.FileHandle; size: number; sequence: number }> | undefined;

  function serial<T>(task: () => Promise<T>): Promise<T> {
    const run = queue.then(task);
    queue = run.catch(() => undefined);
    return run;
  }

  async function open(): Promise<{ handle: fs.promises.FileHandle; size: number; sequence: number }> {
    let sequence = await lastSequence(current, true);
    if (sequence === 0) sequence = await lastSequence(previous, false);
    const handle = await fs.promises.open(current, "a+", 0o600);
    try {
      let { size } = await handle.stat();
      if (size > 0) {
        // Seal a torn tail, so that the next record is a line of its own.
        const last = Buffer.alloc(1);
        await handle.read(last, 0, 1, size - 1);
        if (last[0] !== 0x0a) {
          await handle.write("\n");
          await handle.datasync();
          size++;
        }
      } else {
        await syncDirectory(options.directory);
      }
      return { handle, size, sequence };
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  async function lastSequence(file: string, warn: boolean): Promise<number> {
    let last = 0;
    await readLines(file, (line, number) => {
      const event = parseAuditLine(line);
      if ("damaged" in event) {
        if (warn) {
          try {
            options.onDamagedLine(file, number, event.damaged);
          } catch {
            // A failing hook must not stop the log.
          }
        }
        return true;
      }
      last = Math.max(last, event.sequence);
      return true;
    });
    return last;
  }

  function ensureOpen() {
    opened ??= open();
    // A failed open is tried again on the next call.
    opened.catch(() => {
      opened = undefined;
    });
    return opened;
  }

  return {
    record(record: AuditRecord) {
      return serial(async () => {
        let state = await ensureOpen();
        let line = formatAuditLine({ ...record, sequence: state.sequence + 1 });
        if (state.size > 0 && state.size + Buffer.byteLength(line) > options.maxBytes) {
          await state.handle.close();
          opened = undefined;
          await fs.promises.rename(current, previous);
          await syncDirectory(options.directory);
          state = await ensureOpen();
          line = formatAuditLine({ ...record, sequence: state.sequence + 1 });
        }
        try {
          await state.handle.write(line);
          await state.handle.datasync();
        } catch (error) {
          // A part of the line may be on disk: reopen, which seals it off.
          opened = undefined;
          await state.handle.close().catch(() => undefined);
          throw error;
        }
        state.size += Buffer.byteLength(line);
        state.sequence++;
      });
    },
    list(query) {
      // In the queue: a rotation must not happen between the two files.
      return serial(async () => {
        await ensureOpen();
        const events: AuditEvent[] = [];
        let more = false;
        for (const file of [previous, current]) {
          await readLines(file, (line) => {
            const event = parseAuditLine(line);
            if ("damaged" in event || !auditEventMatches(event, query)) return true;
            if (events.length === query.limit) {
              more = true;
              return false;
            }
            events.push(event);
            return true;
          });
          if (more) break;
        }
        return { events, more };
      });
    },
    close() {
      return serial(async () => {
        const state = opened;
        opened = undefined;
        if (state !== undefined) await (await state.catch(() => undefined))?.handle.close();
      });
    },
  };
}

// Calls `each` with every line of a file (numbered from 1) until it returns
// false; a missing file has no lines.
async function readLines(file: string, each: (line: string, number: number) => boolean): Promise<void> {
  let stream: fs.ReadStream;
  try {
    const handle = await fs.promises.open(file, "r");
    stream = handle.createReadStream({ encoding: "utf8" });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  let number = 0;
  try {
    for await (const line of lines) {
      number++;
      if (line === "") continue;
      if (!each(line, number)) break;
    }
  } finally {
    lines.close();
    stream.destroy();
  }
}
