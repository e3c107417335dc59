// certgate's one reader of certificate (and CRL) input: PEM text or DER
// bytes, as uploaded to the store service, found in a watched folder, given
// on the command line or as `ca` / `crls` options. Every caller refuses
// private keys and broken input by the same rules; each says it in its own
// words.
import { childrenOf, inspectDer, type Tlv } from "./der.js";
import { decodeBase64, pemBegin, reuseBase64Scratch, scanPem } from "./pem-blocks.js";

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
  if (transient) reuseBase64Scratch();
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
  return buffer.indexOf(pemBegin) < 0
    ? decodeDer(buffer, refuseKeys, inspect)
    : decodePem(buffer, labels, refuseKeys, options.otherBlocks ?? "refuse", inspect, transient);
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
