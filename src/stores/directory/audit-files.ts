import * as fs from "node:fs";
import * as path from "node:path";
import { createInterface } from "node:readline";

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
    const { size } = await handle.stat();
    if (size === 0) return;
    const last = Buffer.alloc(1);
    await handle.read(last, 0, 1, size - 1);
    const terminated = last[0] === 0x0a;
    const stream = handle.createReadStream({ encoding: "utf8", start: 0, end: size - 1, autoClose: false });
    const lines = createInterface({ input: stream, crlfDelay: Infinity });
    let number = 0;
    let pending: string | undefined;
    try {
      for await (const line of lines) {
        // Each line is passed once the next one is known, so that the last
        // one can be held back.
        if (pending !== undefined) {
          number++;
          if (pending !== "" && !each(pending, number)) return;
        }
        pending = line;
      }
      if (pending !== undefined && (terminated || tornTail)) {
        number++;
        if (pending !== "") each(pending, number);
      }
    } finally {
      lines.close();
      stream.destroy();
    }
  } finally {
    if (typeof source === "string") await handle.close();
  }
}
