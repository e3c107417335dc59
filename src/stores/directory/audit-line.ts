import { createHash, createHmac } from "node:crypto";
import type { AuditEvent } from "../../core/audit.js";

/**
 * genesisDigest is the `prev` of the first record of a trail: 64 zeros.
 */
export const genesisDigest = "0".repeat(64);

// A chained line is
// `{"v":2,"mac":"sha256","prev":"<64 hex>","hash":"<64 hex>","event":<event JSON>}`:
// `hash` is the SHA-256 (or, with a key, the HMAC-SHA-256) of `prev`, a
// newline and the event text exactly as written, and `prev` is the `hash`
// of the record before it in the same file pair. A line stays JSON for jq.
const chained = /^\{"v":2,"mac":"(sha256|hmac-sha256)","prev":"([0-9a-f]{64})","hash":"([0-9a-f]{64})","event":/;
// A line written before the chain: `{"sum":"<16 hex>","event":<event JSON>}`.
const legacy = /^\{"sum":"([0-9a-f]{16})","event":/;

/**
 * chainDigest is the `hash` of a record: SHA-256 of `prev`, a newline and the
 * event text, or HMAC-SHA-256 under `key` when one is given.
 */
export function chainDigest(prev: string, text: string, key: Uint8Array | undefined): string {
  const hash = key === undefined ? createHash("sha256") : createHmac("sha256", key);
  return hash.update(prev).update("\n").update(text).digest("hex");
}

function eventText(event: AuditEvent): string {
  return JSON.stringify({
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
}

/**
 * formatAuditLine returns the line (with its newline) of one event chained
 * to the record whose digest is `prev`, and the event's own digest.
 */
export function formatAuditLine(
  event: AuditEvent,
  prev: string = genesisDigest,
  key?: Uint8Array,
): { readonly line: string; readonly digest: string } {
  const text = eventText(event);
  const digest = chainDigest(prev, text, key);
  const mac = key === undefined ? "sha256" : "hmac-sha256";
  return { line: `{"v":2,"mac":"${mac}","prev":"${prev}","hash":"${digest}","event":${text}}\n`, digest };
}

/**
 * ParsedAuditLine is one line of the trail read back: a record, with its
 * place in the chain, or a damaged line and why.
 */
export type ParsedAuditLine =
  | {
      readonly kind: "record";
      readonly event: AuditEvent;
      /** Its digest; for a line written before the chain, the SHA-256 of the line. */
      readonly digest: string;
      /** The digest it follows; undefined for a line written before the chain. */
      readonly prev: string | undefined;
      /** Whether its digest is keyed (HMAC). */
      readonly keyed: boolean;
      /** False for a keyed record read without the key: its digest could not be checked. */
      readonly checked: boolean;
    }
  | { readonly kind: "damaged"; readonly reason: string };

/**
 * parseAuditLine reads one line (without its newline) back, checking its
 * digest (a keyed digest only when `key` is given), or says why it cannot:
 * a torn line, a digest that does not match, a wrong shape.
 */
export function parseAuditLine(line: string, key?: Uint8Array): ParsedAuditLine {
  if (!line.endsWith("}")) return { kind: "damaged", reason: "not a complete record (torn or damaged)" };
  const match = chained.exec(line);
  if (match !== null) {
    const [head, mac, prev, hash] = match as unknown as [string, string, string, string];
    const text = line.slice(head.length, -1);
    const keyed = mac === "hmac-sha256";
    const checked = !keyed || key !== undefined;
    if (checked && chainDigest(prev, text, keyed ? key : undefined) !== hash) {
      return { kind: "damaged", reason: "digest mismatch (edited, torn or damaged)" };
    }
    return recordOf(text, { digest: hash, prev, keyed, checked });
  }
  const old = legacy.exec(line);
  if (old !== null) {
    const text = line.slice(old[0].length, -1);
    if (createHash("sha256").update(text).digest("hex").slice(0, 16) !== old[1]) {
      return { kind: "damaged", reason: "checksum mismatch (edited, torn or damaged)" };
    }
    const digest = createHash("sha256").update(line).digest("hex");
    return recordOf(text, { digest, prev: undefined, keyed: false, checked: true });
  }
  return { kind: "damaged", reason: "not a complete record (torn or damaged)" };
}

function recordOf(
  text: string,
  chain: { digest: string; prev: string | undefined; keyed: boolean; checked: boolean },
): ParsedAuditLine {
  try {
    const e = JSON.parse(text) as Record<string, unknown>;
    const actor = e.actor as Record<string, unknown> | null;
    const strings = [e.action, e.result, e.code, e.reason, e.id, e.sha256, actor?.subject, actor?.sha256];
    const time = new Date(String(e.time));
    if (!Number.isSafeInteger(e.seq) || strings.some((s) => typeof s !== "string") || Number.isNaN(time.getTime())) {
      return { kind: "damaged", reason: "not an audit record" };
    }
    const event: AuditEvent = Object.freeze({
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
    return { kind: "record", event, ...chain };
  } catch {
    return { kind: "damaged", reason: "not JSON" };
  }
}
