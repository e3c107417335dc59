// PEM armour: the blocks of PEM text, located in a buffer, and the strict
// base64 inside them. `decodePemOrDer` and `readPemBlocks` read with these.

/** pemBegin is the start of a PEM BEGIN line, as bytes. */
export const pemBegin = Buffer.from("-----BEGIN ", "latin1");
const dashes = Buffer.from("-----", "latin1");

// Which bytes may appear between the armour lines: base64 and whitespace.
const base64Byte = new Uint8Array(256);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") base64Byte[c.charCodeAt(0)] = 1;
for (const c of " \t\r\n") base64Byte[c.charCodeAt(0)] = 2;

// The buffer that `transient` decoding reuses, and how much of it the
// current call took.
let scratch = Buffer.allocUnsafe(16 * 1024);
let scratchUsed = 0;

/**
 * reuseBase64Scratch lets the next `transient` decodings reuse the whole
 * scratch buffer: the views handed out before are no longer needed.
 */
export function reuseBase64Scratch(): void {
  scratchUsed = 0;
}

/**
 * decodeBase64 decodes strict base64 (whitespace allowed anywhere, `=`
 * padding only at the end) between `start` and `end`, or returns undefined:
 * Node's own decoder skips junk silently. A `transient` result is a view of
 * the scratch buffer (see `reuseBase64Scratch`).
 */
export function decodeBase64(buffer: Buffer, start: number, end: number, transient = false): Uint8Array | undefined {
  let count = 0;
  let padding = 0;
  for (let i = start; i < end; i++) {
    const b = buffer[i]!;
    const kind = base64Byte[b];
    if (kind === 1 && padding === 0) count++;
    else if (b === 0x3d) padding++;
    else if (kind !== 2) return undefined;
  }
  if (count === 0 || padding > 2 || (count + padding) % 4 !== 0) return undefined;
  if (transient) {
    const size = ((count + padding) / 4) * 3;
    // A larger buffer leaves the earlier views of this call on the old one.
    if (scratchUsed + size > scratch.length) {
      scratch = Buffer.allocUnsafe(Math.max(scratch.length * 2, size));
      scratchUsed = 0;
    }
    const written = scratch.write(buffer.toString("latin1", start, end), scratchUsed, "base64");
    const view = new Uint8Array(scratch.buffer, scratch.byteOffset + scratchUsed, written);
    scratchUsed += written;
    return view;
  }
  // Small results come from Node's buffer pool: no native allocation each.
  const der = Buffer.from(buffer.toString("latin1", start, end), "base64");
  return new Uint8Array(der.buffer, der.byteOffset, der.byteLength);
}

/**
 * ScannedBlock is one armoured block, located in the buffer, or why the
 * armour is broken.
 */
export type ScannedBlock =
  | { readonly kind: "block"; readonly label: string; readonly bodyStart: number; readonly bodyEnd: number }
  | { readonly kind: "broken"; readonly reason: string; readonly label: string | undefined };

/**
 * scanPem walks the PEM blocks of a buffer in order; it stops after a
 * broken one.
 */
// Walks the PEM blocks of a buffer in order; stops after a broken one.
export function* scanPem(buffer: Buffer): Generator<ScannedBlock> {
  let next = buffer.indexOf(pemBegin);
  while (next >= 0) {
    const labelEnd = buffer.indexOf(dashes, next + pemBegin.length);
    const label = labelEnd < 0 ? "" : buffer.toString("latin1", next + pemBegin.length, labelEnd);
    if (labelEnd < 0 || label.length > 64) {
      yield { kind: "broken", reason: "broken BEGIN line", label: undefined };
      return;
    }
    const bodyStart = labelEnd + dashes.length;
    const endLine = `-----END ${label}-----`;
    const bodyEnd = buffer.indexOf(endLine, bodyStart, "latin1");
    const following = buffer.indexOf(pemBegin, bodyStart);
    if (bodyEnd < 0 || (following >= 0 && following < bodyEnd)) {
      yield { kind: "broken", reason: "no END line (truncated?)", label };
      return;
    }
    next = buffer.indexOf(pemBegin, bodyEnd + endLine.length);
    yield { kind: "block", label, bodyStart, bodyEnd };
  }
}

/**
 * PemBlock is one armoured block of a PEM file.
 */
export interface PemBlock {
  /** The label, such as `CERTIFICATE` or `PRIVATE KEY`. */
  readonly label: string;
  /** The decoded bytes; undefined when the base64 inside is broken. */
  readonly der: Uint8Array | undefined;
}

/**
 * readPemBlocks lists the whole armoured blocks in PEM text, in order, up to
 * the first broken one, with the reader of `decodePemOrDer`.
 */
export function readPemBlocks(text: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  const buffer = Buffer.from(text, "latin1");
  for (const block of scanPem(buffer)) {
    if (block.kind === "broken") break;
    const der = decodeBase64(buffer, block.bodyStart, block.bodyEnd);
    blocks.push({ label: block.label, der: der?.slice() });
  }
  return blocks;
}
