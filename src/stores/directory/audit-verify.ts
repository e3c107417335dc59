import { genesisDigest, parseAuditLine } from "./audit-line.js";
import { auditFilePairs, readAuditLines, type AuditFilePair } from "./audit-files.js";

/**
 * AuditTrailProblem is one thing `verifyAuditTrail` found wrong.
 *
 * - `damaged`: a line whose digest does not match its text (edited without
 *   the digest recomputed, or under a key), or that is torn or not a record.
 * - `break`: a record that does not follow the one before it in its file
 *   pair: records were deleted, inserted or moved, or one before it was
 *   rewritten with its digest recomputed.
 * - `order`: a sequence number not above the one before it (moved or copied).
 * - `gap`: sequence numbers missing from the trail (records deleted).
 * - `unkeyed`: with a key, a record without a keyed digest after keyed ones
 *   (written by someone without the key).
 * - `unchecked`: keyed records checked without the key: their digests could
 *   not be verified.
 */
export interface AuditTrailProblem {
  readonly kind: "damaged" | "break" | "order" | "gap" | "unkeyed" | "unchecked";
  /** The file, or undefined for a gap. */
  readonly file: string | undefined;
  /** The line in it (from 1); 0 when not about one line. */
  readonly line: number;
  /** Why, for people. */
  readonly message: string;
}

/**
 * AuditTrailReport is what `verifyAuditTrail` found.
 */
export interface AuditTrailReport {
  /** The records read (damaged lines not counted). */
  readonly records: number;
  /** The files read, oldest first per trail. */
  readonly files: readonly string[];
  /** The lowest and highest sequence numbers checked for gaps; 0 when none. */
  readonly from: number;
  readonly to: number;
  /** Records written before the hash chain (`"sum"` lines): read, not chained. */
  readonly unchained: number;
  /** What is wrong, in file order; empty when nothing was found. */
  readonly problems: readonly AuditTrailProblem[];
}

/**
 * verifyAuditTrail checks the folder store's audit trail in `directory`:
 * every line's digest, that each record follows the one before it in its
 * file pair (the hash chain), that sequence numbers increase, and that no
 * sequence number is missing in the range both trails still hold. With
 * `key`, keyed digests are checked and a record without one after keyed
 * ones is reported. It reads the files as they are; a running writer may
 * go on appending.
 *
 * It cannot see records cut from the end of a file, nor a tail rewritten
 * with its digests recomputed by someone who can write the files, unless
 * the trail is keyed and the key is kept from them (see docs/audit.md).
 */
export async function verifyAuditTrail(options: {
  readonly directory: string;
  readonly key?: Uint8Array;
}): Promise<AuditTrailReport> {
  const pairs = auditFilePairs(options.directory);
  const problems: AuditTrailProblem[] = [];
  const files: string[] = [];
  const sequences: number[] = [];
  let records = 0;
  let unchained = 0;
  let floor = 1;
  for (const pair of [pairs.changes, pairs.attempts]) {
    const result = await verifyPair(pair, options.key, problems, files);
    records += result.sequences.length;
    unchained += result.unchained;
    sequences.push(...result.sequences);
    if (result.first !== undefined && !result.complete) floor = Math.max(floor, result.first);
  }
  sequences.sort((a, b) => a - b);
  const checked = sequences.filter((s) => s >= floor);
  let expected = floor;
  for (const sequence of checked) {
    if (sequence > expected) {
      problems.push({
        kind: "gap",
        file: undefined,
        line: 0,
        message:
          sequence === expected + 1
            ? `sequence number ${expected} is missing: a record was deleted`
            : `sequence numbers ${expected} to ${sequence - 1} are missing: records were deleted`,
      });
    }
    expected = Math.max(expected, sequence + 1);
  }
  return {
    records,
    files,
    from: checked.length === 0 ? 0 : floor,
    to: checked.length === 0 ? 0 : checked[checked.length - 1]!,
    unchained,
    problems,
  };
}

async function verifyPair(
  pair: AuditFilePair,
  key: Uint8Array | undefined,
  problems: AuditTrailProblem[],
  files: string[],
): Promise<{ sequences: number[]; first: number | undefined; complete: boolean; unchained: number }> {
  const sequences: number[] = [];
  let last: { digest: string; sequence: number; file: string; line: number } | undefined;
  let afterDamage = false;
  let complete = false;
  let first: number | undefined;
  let unchained = 0;
  let keyedSeen = false;
  let unchecked = 0;
  for (const file of [pair.previous, pair.current]) {
    let exists = false;
    await readAuditLines(file, true, (text, line) => {
      exists = true;
      const where = `line ${line} of ${file}`;
      const parsed = parseAuditLine(text, key);
      if (parsed.kind === "damaged") {
        problems.push({ kind: "damaged", file, line, message: `${where}: ${parsed.reason}` });
        afterDamage = true;
        return true;
      }
      const { event, prev } = parsed;
      const at = `${where} (sequence ${event.sequence})`;
      if (first === undefined) {
        first = event.sequence;
        complete = prev === genesisDigest || (prev === undefined && event.sequence === 1);
        if (!complete && prev !== undefined && file === pair.current && !afterDamage) {
          problems.push({
            kind: "break",
            file,
            line,
            message: `${at} follows a record that is not in the trail: the previous file or the records before it were removed`,
          });
        }
      } else if (last !== undefined) {
        if (prev !== undefined && prev !== last.digest && !afterDamage) {
          problems.push({
            kind: "break",
            file,
            line,
            message: `${at} does not follow the record before it (sequence ${last.sequence}, line ${last.line} of ${last.file}): records were deleted, inserted, moved or rewritten here`,
          });
        }
        if (event.sequence <= last.sequence) {
          problems.push({
            kind: "order",
            file,
            line,
            message: `${at} comes after sequence ${last.sequence}: records were moved or copied`,
          });
        }
      }
      if (prev === undefined) unchained++;
      if (parsed.keyed) keyedSeen = true;
      if (!parsed.checked) unchecked++;
      if (key !== undefined && keyedSeen && !parsed.keyed) {
        problems.push({
          kind: "unkeyed",
          file,
          line,
          message: `${at} has no keyed digest after keyed records: it was written without the key`,
        });
      }
      afterDamage = false;
      sequences.push(event.sequence);
      last = { digest: parsed.digest, sequence: event.sequence, file, line };
      return true;
    });
    if (exists) files.push(file);
  }
  if (unchecked > 0) {
    problems.push({
      kind: "unchecked",
      file: pair.current,
      line: 0,
      message: `${unchecked} keyed records of the ${pair.name} trail could not be checked: give the audit key`,
    });
  }
  return { sequences, first, complete, unchained };
}
