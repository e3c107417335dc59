import { createPrivateKey } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { isPrivateKeyLabel, parseCertificate, readPemBlocks, type Certificate } from "../core/certificate.js";

/**
 * UploadResult is what `parseUpload` makes of the bytes of an upload.
 */
export type UploadResult =
  | { readonly kind: "certificate"; readonly certificate: Certificate }
  | { readonly kind: "private_key" }
  | { readonly kind: "too_large"; readonly size: number; readonly limit: number }
  | { readonly kind: "invalid"; readonly message: string };

/**
 * defaultMaxUploadBytes is the default limit on the size of one uploaded
 * certificate: 64 KiB, far above any real certificate (a few KiB).
 */
export const defaultMaxUploadBytes = 64 * 1024;

// Marks of private key material in text: PEM labels (PKCS#8, PKCS#1, SEC1,
// encrypted, OpenSSH, PGP) and PuTTY key files.
const privateKeyText = /PRIVATE KEY|PuTTY-User-Key-File/;
const pemBegin = /-----BEGIN [^-\r\n]*-----/g;

/**
 * parseUpload reads exactly one public certificate from PEM text or DER
 * bytes. Anything that looks like private key material, wherever it is in the
 * bytes, makes it `private_key`: the caller must refuse the whole request and
 * keep nothing of it.
 */
export function parseUpload(bytes: Uint8Array, maxBytes: number): UploadResult {
  if (bytes.length > maxBytes) {
    return { kind: "too_large", size: bytes.length, limit: maxBytes };
  }
  if (bytes.length === 0) {
    return { kind: "invalid", message: "no certificate in the request" };
  }
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
  if (privateKeyText.test(text)) {
    return { kind: "private_key" };
  }
  if (text.includes("-----BEGIN")) {
    return parsePem(text);
  }
  return parseDer(bytes);
}

function parsePem(text: string): UploadResult {
  const blocks = readPemBlocks(text);
  const begins = text.match(pemBegin)?.length ?? 0;
  if (begins !== blocks.length) {
    return { kind: "invalid", message: "malformed PEM text: a BEGIN line without its END line" };
  }
  let der: Uint8Array | undefined;
  for (const block of blocks) {
    if (isPrivateKeyLabel(block.label)) {
      return { kind: "private_key" };
    }
    if (block.label !== "CERTIFICATE") {
      return { kind: "invalid", message: `unexpected PEM block ${block.label}: upload one CERTIFICATE` };
    }
    if (block.der === undefined) {
      return { kind: "invalid", message: "malformed PEM text: broken base64 in a CERTIFICATE block" };
    }
    if (der !== undefined) {
      return { kind: "invalid", message: "more than one certificate: upload exactly one per request" };
    }
    der = block.der;
  }
  if (der === undefined) {
    return { kind: "invalid", message: "no certificate in the PEM text" };
  }
  return parseDer(der);
}

function parseDer(bytes: Uint8Array): UploadResult {
  const elements = splitDer(bytes);
  if (elements === undefined) {
    return isPrivateKeyDer(bytes) || isPkcs12(bytes) ? { kind: "private_key" } : notACertificate;
  }
  if (elements.some(isPrivateKeyDer) || elements.some(isPkcs12)) {
    return { kind: "private_key" };
  }
  if (elements.length !== 1) {
    return { kind: "invalid", message: "more than one DER structure: upload exactly one certificate" };
  }
  try {
    const certificate = parseCertificate(bytes);
    if (certificate.der.length !== bytes.length) {
      return notACertificate;
    }
    return { kind: "certificate", certificate };
  } catch {
    return notACertificate;
  }
}

const notACertificate: UploadResult = {
  kind: "invalid",
  message: "not a certificate: expected one X.509 certificate, PEM or DER",
};

// Splits concatenated DER structures at the top level; undefined when the
// bytes are not a sequence of well-formed DER headers.
function splitDer(bytes: Uint8Array): Uint8Array[] | undefined {
  const elements: Uint8Array[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    if (bytes[offset] !== 0x30 || offset + 2 > bytes.length) {
      return undefined;
    }
    const first = bytes[offset + 1] as number;
    let length = first;
    let header = 2;
    if (first & 0x80) {
      const count = first & 0x7f;
      if (count === 0 || count > 4 || offset + 2 + count > bytes.length) {
        return undefined;
      }
      length = 0;
      for (let i = 0; i < count; i++) {
        length = length * 256 + (bytes[offset + 2 + i] as number);
      }
      header = 2 + count;
    }
    const end = offset + header + length;
    if (end > bytes.length) {
      return undefined;
    }
    elements.push(bytes.subarray(offset, end));
    offset = end;
  }
  return elements;
}

function isPrivateKeyDer(der: Uint8Array): boolean {
  const key = Buffer.from(der.buffer, der.byteOffset, der.byteLength);
  for (const type of ["pkcs8", "pkcs1", "sec1"] as const) {
    try {
      createPrivateKey({ key, format: "der", type });
      return true;
    } catch {
      // Not this kind of key.
    }
  }
  return false;
}

// The PKCS#7 `data` content type that opens every PKCS#12 (.pfx/.p12) file,
// a bundle made to carry private keys.
const pkcs7Data = Buffer.from("06092a864886f70d010701", "hex");

function isPkcs12(der: Uint8Array): boolean {
  // PFX ::= SEQUENCE { version INTEGER (3), authSafe ContentInfo, ... }
  const head = Buffer.from(der.buffer, der.byteOffset, Math.min(der.byteLength, 32));
  return head.includes(Buffer.from([0x02, 0x01, 0x03])) && head.includes(pkcs7Data);
}

/**
 * LabelLimits bounds the labels of one upload.
 */
export interface LabelLimits {
  /** At most this many labels. */
  readonly maxLabels: number;
  /** At most this many characters per value. */
  readonly maxValueLength: number;
}

const labelKey = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/;
// Control characters would let a label forge lines in logs and CLI output.
const controlCharacters = /[\u0000-\u001f\u007f]/;

/**
 * checkLabels throws an `InvalidArgument` `ConnectError` for labels that the
 * service does not keep: too many, a malformed key, a long value, control
 * characters, or private key text in a value.
 */
export function checkLabels(labels: Readonly<Record<string, string>>, limits: LabelLimits): void {
  const entries = Object.entries(labels);
  if (entries.length > limits.maxLabels) {
    throw new ConnectError(`too many labels: at most ${limits.maxLabels}`, Code.InvalidArgument);
  }
  for (const [key, value] of entries) {
    if (!labelKey.test(key)) {
      throw new ConnectError(
        `invalid label key ${JSON.stringify(key.slice(0, 64))}: letters, digits, ".", "_", "/" and "-", at most 63`,
        Code.InvalidArgument,
      );
    }
    if (privateKeyText.test(value)) {
      throw privateKeyError();
    }
    if (value.length > limits.maxValueLength || controlCharacters.test(value)) {
      throw new ConnectError(
        `invalid value of label ${key}: at most ${limits.maxValueLength} characters, no control characters`,
        Code.InvalidArgument,
      );
    }
  }
}

/**
 * privateKeyError is the refusal of a request that contains a private key.
 */
export function privateKeyError(): ConnectError {
  return new ConnectError(
    "the request contains a private key: send only the public certificate; nothing was stored",
    Code.InvalidArgument,
  );
}

/**
 * uploadError turns a failed `parseUpload` into the `ConnectError` of a
 * CreateCertificate call.
 */
export function uploadError(result: Exclude<UploadResult, { kind: "certificate" }>): ConnectError {
  switch (result.kind) {
    case "private_key":
      return privateKeyError();
    case "too_large":
      return new ConnectError(
        `certificate too large: ${result.size} bytes, at most ${result.limit}`,
        Code.ResourceExhausted,
      );
    default:
      return new ConnectError(result.message, Code.InvalidArgument);
  }
}
