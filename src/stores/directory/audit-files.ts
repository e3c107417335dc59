import * as fs from "node:fs";
import * as path from "node:path";
import { auditEventMatches, type AuditEvent, type AuditQuery } from "../../core/audit.js";
import { parseAuditLine } from "./audit-line.js";

/**
 * auditFileName is the folder store's trail of changes in its data folder;
 * hidden, so the store never reads it as a certificate.
 * `auditPreviousFileName` holds the records before its last rotation.
 */
export const auditFileName = ".certgate-audit.jsonl";
export const auditPreviousFileName = ".certgate-audit.1.jsonl";

/**
 * auditAttemptsFileName is the folder store's trail of refused and failed
 * attempts, rotated on its own into `auditAttemptsPreviousFileName`.
 */
export const auditAttemptsFileName = ".certgate-audit-attempts.jsonl";
export const auditAttemptsPreviousFileName = ".certgate-audit-attempts.1.jsonl";

/**
 * AuditFilePair is one trail of the folder store: its file and the file it
 * was last rotated into. Each pair is one hash chain.
 */
export interface AuditFilePair {
  readonly name: "changes" | "attempts";
  readonly current: string;
  readonly previous: string;
}

/**
 * auditFilePairs names the two trails of a data folder.
 */
export function auditFilePairs(directory: string): { changes: AuditFilePair; attempts: AuditFilePair } {
  return {
    changes: {
      name: "changes",
      current: path.join(directory, auditFileName),
      previous: path.join(directory, auditPreviousFileName),
    },
    attempts: {
      name: "attempts",
      current: path.join(directory, auditAttemptsFileName),
      previous: path.join(directory, auditAttemptsPreviousFileName),
    },
  };
}

const readChunkBytes = 64 * 1024;

/**
 * readAuditLines calls `each` with every non-empty line of a file (numbered
 * from 1) until it returns false; a missing file has no lines. It reads the
 * file as large as it was when the read began. A last line without its
 * newline is passed only with `tornTail` (it may be a record being written
 * right now, or a torn one that the writer seals before its next append).
 * A handle given is read from its start and left open.
 */
export async function readAuditLines(
  source: string | fs.promises.FileHandle,
  tornTail: boolean,
  each: (line: string, number: number) => boolean,
): Promise<void> {
  let handle: fs.promises.FileHandle;
  if (typeof source === "string") {
    try {
      handle = await fs.promises.open(source, "r");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
      throw error;
    }
  } else {
    handle = source;
  }
  try {
    // Read in chunks with positioned reads, up to the size at the start: a
    // writer appending meanwhile is not waited for.
    const { size } = await handle.stat();
    const chunk = Buffer.alloc(readChunkBytes);
    let carry: Buffer[] = [];
    let position = 0;
    let number = 0;
    while (position < size) {
      const { bytesRead } = await handle.read(chunk, 0, Math.min(chunk.length, size - position), position);
      if (bytesRead === 0) break;
      position += bytesRead;
      let start = 0;
      for (let end = chunk.indexOf(0x0a, start); end !== -1 && end < bytesRead; end = chunk.indexOf(0x0a, start)) {
        const line = Buffer.concat([...carry, chunk.subarray(start, end)]).toString("utf8");
        carry = [];
        start = end + 1;
        number++;
        if (line !== "" && !each(line, number)) return;
      }
      if (start < bytesRead) carry.push(Buffer.from(chunk.subarray(start, bytesRead)));
    }
    if (carry.length > 0 && tornTail) {
      const line = Buffer.concat(carry).toString("utf8");
      if (line !== "") each(line, number + 1);
    }
  } finally {
    if (typeof source === "string") await handle.close();
  }
}

/**
 * listAuditFiles reads one page of events from file pairs, merged by
 * sequence number, and counts the damaged lines it passed. Every file is
 * opened before any is read, the current file of a pair before the
 * previous one, so that a rotation while it reads loses nothing (a record
 * read twice is skipped).
 */
export async function listAuditFiles(
  pairs: readonly AuditFilePair[],
  query: AuditQuery,
  key: Uint8Array | undefined,
): Promise<{ events: AuditEvent[]; more: boolean; skipped: number }> {
  let skipped = 0;
  const handles: (fs.promises.FileHandle | undefined)[][] = [];
  try {
    // The current files are opened first: a rotation after that makes the
    // previous file the one already open (read twice, skipped the second
    // time), never a file not yet read.
    for (const pair of pairs) handles.push([undefined, await openIfAny(pair.current)]);
    for (const [i, pair] of pairs.entries()) handles[i]![0] = await openIfAny(pair.previous);
    const sources = await Promise.all(
      handles.map(async (files) => {
        const events: AuditEvent[] = [];
        let last = query.after ?? 0;
        for (const handle of files) {
          if (handle === undefined) continue;
          await readAuditLines(handle, false, (line) => {
            const parsed = parseAuditLine(line, key);
            if (parsed.kind === "damaged") {
              skipped++;
              return true;
            }
            const event = parsed.event;
            if (event.sequence <= last) return true;
            last = event.sequence;
            if (!auditEventMatches(event, query)) return true;
            events.push(event);
            // Each source needs at most limit + 1 events for one page.
            return events.length <= query.limit;
          });
          if (events.length > query.limit) break;
        }
        return events;
      }),
    );
    const merged = sources.flat().sort((a, b) => a.sequence - b.sequence);
    return { events: merged.slice(0, query.limit), more: merged.length > query.limit, skipped };
  } finally {
    for (const handle of handles.flat()) await handle?.close();
  }
}

async function openIfAny(file: string): Promise<fs.promises.FileHandle | undefined> {
  try {
    return await fs.promises.open(file, "r");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}
