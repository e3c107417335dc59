import { Code, ConnectError } from "@connectrpc/connect";
import { parseCertificate, type Certificate } from "../core/certificate.js";
import { decodePemOrDer } from "../core/pem-der.js";
import { checkLabels, type LabelLimits } from "../core/labels.js";
import { isPlainCertificateDer } from "../core/plain-certificate-der.js";
import { digest } from "../core/thumbprint.js";

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

/**
 * parseUpload reads exactly one public certificate from PEM text or DER
 * bytes, with certgate's one PEM/DER reader. Anything that looks like
 * private key material, wherever it is in the bytes, makes it
 * `private_key`: the caller must refuse the whole request and keep nothing
 * of it.
 */
export function parseUpload(bytes: Uint8Array, maxBytes: number): UploadResult {
  if (bytes.length > maxBytes) {
    return { kind: "too_large", size: bytes.length, limit: maxBytes };
  }
  if (bytes.length === 0) {
    return { kind: "invalid", message: "no certificate in the request" };
  }
  const decoded = decodePemOrDer(bytes);
  if (decoded.kind === "problem") {
    switch (decoded.code) {
      case "private_key":
      case "pkcs12":
        return { kind: "private_key" };
      case "broken_pem":
        return { kind: "invalid", message: "malformed PEM text: a BEGIN line without its END line" };
      case "broken_base64":
        return { kind: "invalid", message: "malformed PEM text: broken base64 in a CERTIFICATE block" };
      case "other_block":
        return { kind: "invalid", message: `unexpected PEM block ${decoded.label ?? ""}: upload one CERTIFICATE` };
      default:
        return notACertificate;
    }
  }
  const [der, ...more] = decoded.ders;
  if (more.length > 0) {
    return {
      kind: "invalid",
      message: decoded.pem
        ? "more than one certificate: upload exactly one per request"
        : "more than one DER structure: upload exactly one certificate",
    };
  }
  if (der === undefined) {
    return { kind: "invalid", message: "no certificate in the PEM text" };
  }
  try {
    const certificate = parseCertificate(der);
    if (certificate.der.length !== der.length) {
      return notACertificate;
    }
    return { kind: "certificate", certificate };
  } catch {
    return notACertificate;
  }
}

/**
 * BatchUploadResult is `parseBatchUpload`'s reading of one batch item.
 */
export type BatchUploadResult =
  | { readonly kind: "certificate"; readonly der: Uint8Array; readonly sha256: string }
  | Exclude<UploadResult, { kind: "certificate" }>;

/**
 * parseBatchUpload is `parseUpload` for the items of a batch, where a full
 * parse (over 100 µs, OpenSSL's) would cap a bulk load at a few thousand
 * certificates a second: a DER certificate of the plain shape that OpenSSL
 * reads back as the same bytes (`isPlainCertificateDer`) is taken as it
 * is; anything else is parsed in full, as one upload is, so that a batch
 * stores nothing that `parseUpload` refuses. Either way it is exactly one
 * certificate, with no private key anywhere in the bytes.
 */
export function parseBatchUpload(bytes: Uint8Array, maxBytes: number): BatchUploadResult {
  if (bytes.length > maxBytes) return { kind: "too_large", size: bytes.length, limit: maxBytes };
  if (bytes.length > 0 && bytes[0] === 0x30 && isPlainCertificateDer(bytes)) {
    const der = Uint8Array.prototype.slice.call(bytes);
    return { kind: "certificate", der, sha256: digest("sha256", der) };
  }
  const upload = parseUpload(bytes, maxBytes);
  if (upload.kind !== "certificate") return upload;
  return { kind: "certificate", der: upload.certificate.der, sha256: upload.certificate.sha256 };
}

const notACertificate: UploadResult = {
  kind: "invalid",
  message: "not a certificate: expected one X.509 certificate, PEM or DER",
};

/**
 * checkUploadLabels throws an `InvalidArgument` `ConnectError` for labels
 * that certgate's label rules (`checkLabels`) refuse, and the private key
 * error for a value holding private key text.
 */
export function checkUploadLabels(labels: Readonly<Record<string, string>>, limits: LabelLimits): void {
  const problem = checkLabels(labels, limits);
  if (problem?.kind === "private_key") {
    throw privateKeyError();
  }
  if (problem !== undefined) {
    throw new ConnectError(problem.message, Code.InvalidArgument);
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
