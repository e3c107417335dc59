import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { isValidCertificateId, type StoredCertificate } from "../../core/store.js";
import { checkLabels } from "../../core/labels.js";
import { parseCertificate } from "../../core/certificate.js";
import { decodeCertificateFile, readMetadata } from "./certificate-file.js";
import { certificateExtensions, readFile } from "./folder-files.js";

// The read and validation side of the writable store: ids, the certificate
// given to `put`, and `StoredCertificate`s read back from disk.

/**
 * parseEntryId splits an entry id into the file id and the 0-based position
 * in the file (`team#2` is the second certificate of `team.pem`). It throws
 * `InvalidArgument` for anything that is not a valid id.
 */
export function parseEntryId(id: string): { fileId: string; member: number } {
  const hash = typeof id === "string" ? id.lastIndexOf("#") : -1;
  const fileId = hash < 0 ? id : id.slice(0, hash);
  const member = hash < 0 ? 0 : Number(id.slice(hash + 1)) - 1;
  const memberOk = hash < 0 || (/^[1-9][0-9]{0,5}$/.test(id.slice(hash + 1)) && member >= 1);
  if (typeof id !== "string" || !isValidCertificateId(fileId) || !memberOk) {
    throw new ConnectError(
      `invalid certificate id ${JSON.stringify(String(id)).slice(0, 140)}: letters, digits, '.', '_' and '-', 1 to 128 characters, not starting with '.'`,
      Code.InvalidArgument,
    );
  }
  return { fileId, member };
}

/**
 * checkUpload returns the DER of the one certificate in `input` (DER, or PEM
 * text as bytes), or throws `InvalidArgument`: for a private key, for
 * anything but exactly one certificate, for a certificate that does not
 * parse, and for labels that cannot be stored.
 */
export function checkUpload(input: Uint8Array, labels: unknown): Uint8Array {
  if (!(input instanceof Uint8Array)) {
    throw new ConnectError("certificate must be bytes (DER or PEM)", Code.InvalidArgument);
  }
  const labelProblem = checkLabels(labels);
  if (labelProblem !== undefined) {
    throw new ConnectError(`invalid labels: ${labelProblem.message}`, Code.InvalidArgument);
  }
  const decoded = decodeCertificateFile(input);
  if (decoded.kind === "problem") {
    const message =
      decoded.code === "private_key"
        ? "a private key is never stored: upload the certificate alone"
        : `not a certificate: ${decoded.reason}`;
    throw new ConnectError(message, Code.InvalidArgument);
  }
  if (decoded.ders.length !== 1) {
    throw new ConnectError(`expected exactly one certificate, got ${decoded.ders.length}`, Code.InvalidArgument);
  }
  // A copy: the decoder's DER may be a view of a buffer that the next read
  // reuses (Buffer's slice() is a view too).
  const der = Uint8Array.prototype.slice.call(decoded.ders[0]!);
  // The single upload's check (`parseUpload`): certgate's reader, which
  // also refuses bytes after the certificate and the encodings DER forbids
  // that OpenSSL would take.
  try {
    parseCertificate(der);
  } catch (error) {
    throw new ConnectError("certificate cannot be parsed", Code.InvalidArgument, undefined, undefined, error);
  }
  return der;
}

// crypto.hash (Node 20.12 and later) makes no Hash object: a listing of
// 100k certificates would otherwise leave 200k native objects for the
// garbage collector, and their memory in the allocator's arenas.
const oneShot = (crypto as unknown as { hash?: (algorithm: string, data: Uint8Array, encoding: "hex") => string }).hash;

function hexDigest(algorithm: "sha1" | "sha256", der: Uint8Array): string {
  const hex =
    oneShot !== undefined ? oneShot(algorithm, der, "hex") : crypto.createHash(algorithm).update(der).digest("hex");
  return hex.toUpperCase();
}

/**
 * storedCertificate builds the `StoredCertificate` of one DER certificate.
 */
export function storedCertificate(
  id: string,
  der: Uint8Array,
  labels: Readonly<Record<string, string>>,
  createTime: Date,
): StoredCertificate {
  return Object.freeze({
    id,
    der,
    sha1: hexDigest("sha1", der),
    sha256: hexDigest("sha256", der),
    labels: Object.freeze({ ...labels }),
    createTime,
  });
}

/**
 * readStored reads every certificate of one file as `StoredCertificate`s
 * (ids as `parseEntryId` reads them), or undefined when the file is gone or
 * no longer holds certificates. The create time of a file that did not come
 * from `put` is its modification time.
 */
export function readStored(
  directory: string,
  fileId: string,
  name: string,
  maxFileBytes: number,
): StoredCertificate[] | undefined {
  const read = readFile(path.join(directory, name), maxFileBytes);
  if (read.kind !== "read") return undefined;
  const decoded = decodeCertificateFile(read.bytes);
  if (decoded.kind !== "certificates") return undefined;
  const meta = readMetadata(read.bytes);
  const createTime = meta.createTime ?? new Date(read.signature.mtimeMs);
  // A copy of its own: the DER may be a view of the read buffer that the
  // next read reuses, or of a buffer-pool slab that it would keep alive.
  return decoded.ders.map((der, m) =>
    storedCertificate(
      m === 0 ? fileId : `${fileId}#${m + 1}`,
      Uint8Array.prototype.slice.call(der),
      meta.labels,
      createTime,
    ),
  );
}

/**
 * namesOnDisk lists the certificate files of `fileId` that exist, by the
 * lower-case extensions, plus `extra` names (such as the loaded file's).
 */
export function namesOnDisk(directory: string, fileId: string, extra: Iterable<string>): string[] {
  const names = new Set([...certificateExtensions.map((ext) => fileId + ext), ...extra]);
  return [...names].filter(
    (name) => fs.existsSync(path.join(directory, name)) || isSymlink(path.join(directory, name)),
  );
}

function isSymlink(file: string): boolean {
  try {
    return fs.lstatSync(file).isSymbolicLink();
  } catch {
    return false;
  }
}

/**
 * writeError turns a failed file operation into a `ConnectError`.
 */
export function writeError(what: string, error: unknown): ConnectError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "EROFS" || code === "EACCES" || code === "EPERM") {
    return new ConnectError(
      `cannot ${what}: the certificate folder is not writable (${code})`,
      Code.FailedPrecondition,
      undefined,
      undefined,
      error,
    );
  }
  if (code === "ENOSPC" || code === "EDQUOT") {
    return new ConnectError(
      `cannot ${what}: no space left (${code})`,
      Code.ResourceExhausted,
      undefined,
      undefined,
      error,
    );
  }
  return new ConnectError(`cannot ${what}: ${code ?? "i/o error"}`, Code.Internal, undefined, undefined, error);
}

/**
 * checkFolder checks a folder option at start-up and returns it resolved;
 * it throws an error that names the folder and the option.
 */
export function checkFolder(folder: unknown, option: string): string {
  if (typeof folder !== "string" || folder.length === 0) {
    throw new TypeError(`certgate: createDirectoryStore() needs options.${option}, a folder path`);
  }
  let stat: fs.Stats;
  try {
    stat = fs.statSync(folder);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "does not exist" : `cannot be read (${code ?? String(error)})`;
    throw new Error(`certgate: the certificate folder ${folder} (options.${option}) ${why}`, { cause: error });
  }
  if (!stat.isDirectory()) {
    throw new Error(`certgate: the certificate folder ${folder} (options.${option}) is not a folder`);
  }
  try {
    fs.accessSync(folder, fs.constants.R_OK | fs.constants.X_OK);
  } catch (error) {
    throw new Error(
      `certgate: the certificate folder ${folder} (options.${option}) cannot be read (permission denied)`,
      { cause: error },
    );
  }
  return path.resolve(folder);
}
