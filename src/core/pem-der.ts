// certgate's one reader of certificate (and CRL) input: PEM text or DER
// bytes, as uploaded to the store service, found in a watched folder, given
// on the command line or as `ca` / `crls` options. Every caller refuses
// private keys and broken input by the same rules; each says it in its own
// words.
import { childrenOf, inspectDer, type Tlv } from "./der.js";

/**
 * PemDerOptions says what a caller wants from `decodePemOrDer`.
 */
export interface PemDerOptions {
  /** The PEM labels of the objects wanted. By default, `["CERTIFICATE"]`. */
  readonly labels?: readonly string[];
  /**
   * `"refuse"`: a private key anywhere (a PEM block, marks of key text, a
   * DER key) makes the whole input a `private_key` problem. `"count"`: key
   * blocks are skipped and counted (the CLI reads bundles with a key
   * beside the certificate, and never sends the key). By default, `"refuse"`.
   */
  readonly privateKeys?: "refuse" | "count";
  /**
   * `"refuse"`: a PEM block of another label is a problem. `"skip"`: it is
   * listed in `skipped`. By default, `"refuse"`.
   */
  readonly otherBlocks?: "refuse" | "skip";
  /**
   * Whether each object is checked with `inspectDer` as one DER
   * certificate. By default, true when the only label wanted is `CERTIFICATE`.
   */
  readonly inspect?: boolean;
  /**
   * Whether the DER of PEM blocks may be decoded into one buffer that the
   * next call with this option reuses, for a caller that only hashes them
   * at once (a folder of 100,000 files read at start-up): no allocation per
   * certificate, so the read leaves no freed native blocks behind. Copy
   * what you keep. By default, false: each DER is its own.
   */
  readonly transient?: boolean;
}

/**
 * PemDerProblemCode says why input was refused.
 *
 * - `empty`: no bytes.
 * - `not_pem_or_der`: no PEM armour, and not DER either.
 * - `broken_pem`: a BEGIN line that is broken or has no END line.
 * - `broken_base64`: junk inside a block's armour.
 * - `other_block`: a PEM block of a label not wanted (with `otherBlocks: "refuse"`).
 * - `private_key`: private key material (with `privateKeys: "refuse"`).
 * - `pkcs12`: a PKCS#12 archive (which carries private keys).
 * - `invalid`: a block or DER that is not one whole object of the kind wanted.
 */
export type PemDerProblemCode =
  | "empty"
  | "not_pem_or_der"
  | "broken_pem"
  | "broken_base64"
  | "other_block"
  | "private_key"
  | "pkcs12"
  | "invalid";

/**
 * PemDerInput is what `decodePemOrDer` read: the DER of each object, in
 * order, or the first problem.
 */
export type PemDerInput =
  | {
      readonly kind: "decoded";
      /** The DER of each wanted object; may be views of the input: copy what you keep. */
      readonly ders: readonly Uint8Array[];
      /** Whether the input was PEM text. */
      readonly pem: boolean;
      /** How many private key blocks were skipped (`privateKeys: "count"`). */
      readonly privateKeys: number;
      /** The labels of the blocks skipped (`otherBlocks: "skip"`). */
      readonly skipped: readonly string[];
    }
  | {
      readonly kind: "problem";
      readonly code: PemDerProblemCode;
      /** A short lowercase explanation, without the input's name. */
      readonly reason: string;
      /** The 1-based position of the PEM block at fault, if a block is. */
      readonly block?: number;
      /** That block's label. */
      readonly label?: string;
    };

// Marks of private key material in text: PEM labels (PKCS#8, PKCS#1, SEC1,
// encrypted, OpenSSH, PGP) and PuTTY key files.
const privateKeyText = /PRIVATE KEY|PuTTY-User-Key-File/;

/**
 * containsPrivateKeyText tells whether text (or bytes read as Latin-1) holds
 * marks of private key material.
 */
export function containsPrivateKeyText(text: string): boolean {
  return privateKeyText.test(text);
}

const begin = Buffer.from("-----BEGIN ", "latin1");
const dashes = Buffer.from("-----", "latin1");

// Which bytes may appear between the armour lines: base64 and whitespace.
const base64Byte = new Uint8Array(256);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") base64Byte[c.charCodeAt(0)] = 1;
for (const c of " \t\r\n") base64Byte[c.charCodeAt(0)] = 2;

// Decodes strict base64 (whitespace allowed anywhere, `=` padding only at
// the end), or returns undefined: Node's own decoder skips junk silently.
// The buffer that `transient` decoding reuses, and how much of it the
// current call took.
let scratch = Buffer.allocUnsafe(16 * 1024);
let scratchUsed = 0;

function decodeBase64(buffer: Buffer, start: number, end: number, transient = false): Uint8Array | undefined {
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

function problem(code: PemDerProblemCode, reason: string, block?: number, label?: string): PemDerInput {
  return {
    kind: "problem",
    code,
    reason,
    ...(block !== undefined && { block }),
    ...(label !== undefined && { label }),
  };
}

/**
 * decodePemOrDer reads PEM text (one or more blocks, with any explanatory
 * text around them) or DER bytes (one object, or several concatenated).
 * Input with a broken block, a block of another kind (unless skipped) or a
 * private key (unless counted) is refused whole, so that what a caller keeps
 * never depends on how much of a broken input could be read. Never throws.
 */
export function decodePemOrDer(input: string | Uint8Array, options: PemDerOptions = {}): PemDerInput {
  const labels = options.labels ?? ["CERTIFICATE"];
  const refuseKeys = (options.privateKeys ?? "refuse") === "refuse";
  const inspect = options.inspect ?? (labels.length === 1 && labels[0] === "CERTIFICATE");
  const transient = options.transient === true;
  if (transient) scratchUsed = 0;
  const buffer =
    typeof input === "string"
      ? Buffer.from(input, "latin1")
      : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  if (buffer.length === 0) {
    return problem("empty", "empty");
  }
  if (refuseKeys && containsPrivateKeyText(buffer.toString("latin1"))) {
    return problem("private_key", "holds a private key");
  }
  return buffer.indexOf(begin) < 0
    ? decodeDer(buffer, refuseKeys, inspect)
    : decodePem(buffer, labels, refuseKeys, options.otherBlocks ?? "refuse", inspect, transient);
}

// One armoured block, located in the buffer, or why the armour is broken.
type ScannedBlock =
  | { readonly kind: "block"; readonly label: string; readonly bodyStart: number; readonly bodyEnd: number }
  | { readonly kind: "broken"; readonly reason: string; readonly label: string | undefined };

// Walks the PEM blocks of a buffer in order; stops after a broken one.
function* scanPem(buffer: Buffer): Generator<ScannedBlock> {
  let next = buffer.indexOf(begin);
  while (next >= 0) {
    const labelEnd = buffer.indexOf(dashes, next + begin.length);
    const label = labelEnd < 0 ? "" : buffer.toString("latin1", next + begin.length, labelEnd);
    if (labelEnd < 0 || label.length > 64) {
      yield { kind: "broken", reason: "broken BEGIN line", label: undefined };
      return;
    }
    const bodyStart = labelEnd + dashes.length;
    const endLine = `-----END ${label}-----`;
    const bodyEnd = buffer.indexOf(endLine, bodyStart, "latin1");
    const following = buffer.indexOf(begin, bodyStart);
    if (bodyEnd < 0 || (following >= 0 && following < bodyEnd)) {
      yield { kind: "broken", reason: "no END line (truncated?)", label };
      return;
    }
    next = buffer.indexOf(begin, bodyEnd + endLine.length);
    yield { kind: "block", label, bodyStart, bodyEnd };
  }
}

function decodePem(
  buffer: Buffer,
  labels: readonly string[],
  refuseKeys: boolean,
  otherBlocks: "refuse" | "skip",
  inspect: boolean,
  transient: boolean,
): PemDerInput {
  const ders: Uint8Array[] = [];
  const skipped: string[] = [];
  let privateKeys = 0;
  let position = 0;
  for (const block of scanPem(buffer)) {
    position++;
    const label = block.label;
    if (label?.includes("PRIVATE KEY") && refuseKeys)
      return problem("private_key", "holds a private key", position, label);
    if (block.kind === "broken") return problem("broken_pem", block.reason, position, label);
    if (label === undefined) continue;
    if (label.includes("PRIVATE KEY")) {
      privateKeys++;
      continue;
    }
    if (label === "PKCS12" && refuseKeys) return problem("pkcs12", "is a PKCS#12 archive", position, label);
    if (!labels.includes(label)) {
      if (otherBlocks === "refuse") return problem("other_block", `is ${label}, not ${labels[0]}`, position, label);
      skipped.push(label);
      continue;
    }
    const der = decodeBase64(buffer, block.bodyStart, block.bodyEnd, transient);
    if (der === undefined) return problem("broken_base64", "holds broken base64", position, label);
    if (inspect) {
      const kind = inspectDer(der);
      if (kind.kind !== "certificate") {
        const code = kind.kind === "invalid" ? "invalid" : kind.kind;
        return problem(
          code,
          kind.kind === "invalid" ? kind.reason : `holds a ${kind.kind.replace("_", " ")}`,
          position,
          label,
        );
      }
    }
    ders.push(der);
  }
  return { kind: "decoded", ders, pem: true, privateKeys, skipped };
}

function decodeDer(buffer: Buffer, refuseKeys: boolean, inspect: boolean): PemDerInput {
  if (buffer[0] !== 0x30) return problem("not_pem_or_der", "neither PEM nor DER");
  const elements = splitDer(buffer);
  if (elements === undefined) {
    // Not a sequence of whole DER elements; say what the start looks like.
    const kind = inspectDer(buffer);
    if (kind.kind === "private_key" || kind.kind === "pkcs12")
      return problem(kind.kind, `is a ${kind.kind.replace("_", " ")}`);
    return problem("invalid", kind.kind === "invalid" ? kind.reason : "not DER: broken or truncated encoding");
  }
  const ders: Uint8Array[] = [];
  for (const der of elements) {
    const kind = inspectDer(der);
    if ((kind.kind === "private_key" || kind.kind === "pkcs12") && (refuseKeys || kind.kind === "pkcs12")) {
      return problem(kind.kind, `is a ${kind.kind.replace("_", " ")} (DER)`);
    }
    if (inspect && kind.kind !== "certificate") {
      return problem("invalid", kind.kind === "invalid" ? kind.reason : "not a certificate");
    }
    ders.push(new Uint8Array(der.buffer, der.byteOffset, der.byteLength));
  }
  return { kind: "decoded", ders, pem: false, privateKeys: 0, skipped: [] };
}

// Splits concatenated DER elements at the top level; undefined when the
// bytes are not a sequence of whole DER elements.
function splitDer(bytes: Uint8Array): Uint8Array[] | undefined {
  const elements: Uint8Array[] = [];
  const outer: Tlv = { tag: 0, start: 0, contentStart: 0, end: bytes.length };
  try {
    for (const element of childrenOf(bytes, outer, 1024)) {
      elements.push(bytes.subarray(element.start, element.end));
    }
  } catch {
    return undefined;
  }
  const last = elements[elements.length - 1];
  if (last === undefined || last.byteOffset - bytes.byteOffset + last.length !== bytes.length) return undefined;
  return elements;
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
