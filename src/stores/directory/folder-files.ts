import * as fs from "node:fs";
import { isValidCertificateId } from "../../core/store.js";
import type { DirectoryProblemCode, FileSignature } from "./types.js";

/** The extensions of certificate files, in the order that decides between two files of one id. */
export const certificateExtensions = [".pem", ".crt", ".cer", ".der"] as const;

/** The prefix of `put`'s temporary files; hidden, so never loaded. */
export const temporaryPrefix = ".certgate-";

/**
 * NameKind is what a file name in the folder says about the file.
 */
export type NameKind =
  | { readonly kind: "certificate"; readonly id: string; readonly rank: number; readonly validId: boolean }
  | { readonly kind: "secret"; readonly code: "private_key" | "pkcs12" }
  | { readonly kind: "kubernetes" }
  | { readonly kind: "ignored" };

/**
 * classifyName sorts a directory entry name: a certificate file (by its
 * extension, in any case), a private key or PKCS#12 file (reported, never
 * loaded), a Kubernetes `..data`-style entry (a whole-folder rescan), or
 * anything else (editors' swap and backup files, hidden files, our own
 * temporary files), which is ignored.
 */
export function classifyName(name: string): NameKind {
  if (name.startsWith("..")) return { kind: "kubernetes" };
  if (name.startsWith(".")) return { kind: "ignored" };
  const dot = name.lastIndexOf(".");
  if (dot <= 0) return { kind: "ignored" };
  const ext = name.slice(dot).toLowerCase();
  const rank = (certificateExtensions as readonly string[]).indexOf(ext);
  if (rank >= 0) {
    const id = name.slice(0, dot);
    return { kind: "certificate", id, rank, validId: isValidCertificateId(id) };
  }
  if (ext === ".key") return { kind: "secret", code: "private_key" };
  if (ext === ".p12" || ext === ".pfx") return { kind: "secret", code: "pkcs12" };
  return { kind: "ignored" };
}

/**
 * compareNames orders two certificate file names of one id: the one that
 * comes first holds the id.
 */
export function compareNames(a: string, b: string): number {
  const ka = classifyName(a);
  const kb = classifyName(b);
  const ra = ka.kind === "certificate" ? ka.rank : 99;
  const rb = kb.kind === "certificate" ? kb.rank : 99;
  return ra !== rb ? ra - rb : a < b ? -1 : a > b ? 1 : 0;
}

/**
 * FileRead is what reading one directory entry gave.
 */
export type FileRead =
  | { readonly kind: "read"; readonly signature: FileSignature; readonly bytes: Uint8Array }
  | { readonly kind: "missing" }
  | { readonly kind: "not_a_file" }
  | {
      readonly kind: "problem";
      readonly signature: FileSignature | undefined;
      readonly code: DirectoryProblemCode;
      readonly reason: string;
    };

/**
 * FileStat is what a stat of one directory entry gave.
 */
export type FileStat =
  | { readonly kind: "file"; readonly signature: FileSignature }
  | { readonly kind: "missing" }
  | { readonly kind: "not_a_file" }
  | { readonly kind: "problem"; readonly code: DirectoryProblemCode; readonly reason: string };

function signatureOf(stat: fs.Stats): FileSignature {
  return { ino: stat.ino, size: stat.size, mtimeMs: stat.mtimeMs, ctimeMs: stat.ctimeMs };
}

function failure(path: string, error: unknown): FileRead & FileStat {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "ENOENT" || code === "ENOTDIR") {
    // A dangling symlink is listed but cannot be followed: say so, since it
    // usually is a broken mount rather than a removed file.
    // A link through `..data/` whose name the new `..data` lacks is a file
    // removed by the kubelet's atomic writer, which deletes the link itself
    // right after the swap: it is gone, not broken.
    try {
      if (fs.lstatSync(path).isSymbolicLink() && !/^\.\.data[\\/]/.test(fs.readlinkSync(path))) {
        return { kind: "problem", signature: undefined, code: "unreadable", reason: "dangling symlink" };
      }
    } catch {
      // Gone indeed.
    }
    return { kind: "missing" };
  }
  const reason =
    code === "ELOOP"
      ? "symlink loop"
      : code === "EACCES" || code === "EPERM"
        ? "permission denied"
        : `cannot be read: ${code ?? String(error)}`;
  return { kind: "problem", signature: undefined, code: "unreadable", reason };
}

/**
 * statFile stats one entry, following symlinks.
 */
export function statFile(path: string): FileStat {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(path);
  } catch (error) {
    return failure(path, error);
  }
  return stat.isFile() ? { kind: "file", signature: signatureOf(stat) } : { kind: "not_a_file" };
}

const openFlags = fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0);
// One buffer for every read: a fresh one per file is most of the garbage of
// loading 100k files. Callers copy what they keep (decodeCertificateFile does).
let shared = Buffer.allocUnsafe(64 * 1024);

/**
 * readFile reads one entry, following symlinks, with the signature of what
 * was read (fstat of the same descriptor, so they always agree). It never
 * reads more than `maxBytes` + 1 bytes, and opens without blocking, so a
 * FIFO or a huge file cannot stall the load. The bytes returned are only
 * valid until the next call.
 */
export function readFile(path: string, maxBytes: number): FileRead {
  let fd: number;
  try {
    fd = fs.openSync(path, openFlags);
  } catch (error) {
    return failure(path, error);
  }
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) return { kind: "not_a_file" };
    const signature = signatureOf(stat);
    if (stat.size > maxBytes) {
      return {
        kind: "problem",
        signature,
        code: "too_large",
        reason: `${stat.size} bytes, more than maxFileBytes (${maxBytes})`,
      };
    }
    // Reads what fstat announced (one read for a small file, no second one
    // to see the end). A file still being written changes again, and its
    // next event re-reads it.
    const want = Math.min(maxBytes + 1, Math.max(stat.size + 1, 4096));
    if (shared.length < want) shared = Buffer.allocUnsafe(want);
    const buffer = shared.subarray(0, want);
    let length = 0;
    while (length < buffer.length) {
      const n = fs.readSync(fd, buffer, length, buffer.length - length, length);
      if (n === 0) break;
      length += n;
      if (length >= stat.size) break;
    }
    if (length > maxBytes) {
      return { kind: "problem", signature, code: "too_large", reason: `more than maxFileBytes (${maxBytes}) bytes` };
    }
    return { kind: "read", signature, bytes: buffer.subarray(0, length) };
  } catch (error) {
    return failure(path, error);
  } finally {
    fs.closeSync(fd);
  }
}
