/**
 * DirectoryProblemCode says, machine-readably, why a file was skipped.
 *
 * - `unreadable`: the file could not be opened or read (permissions, a
 *   symlink loop, a dangling symlink).
 * - `too_large`: larger than `maxFileBytes`.
 * - `not_a_certificate`: neither PEM certificates nor one DER certificate
 *   (truncated, broken base64, junk inside the armour, another PEM type).
 * - `private_key`: holds a private key; never loaded as trust.
 * - `pkcs12`: a PKCS#12 (`.p12`, `.pfx`) archive; never loaded as trust.
 * - `invalid_id`: the file name (less its extension) is not a valid id.
 * - `duplicate_id`: another file has the same id and comes first.
 * - `not_a_ca`: a file in the CA folder whose certificate may not issue
 *   certificates (basicConstraints cA, keyUsage keyCertSign).
 * - `folder_unavailable`: the folder is gone or cannot be listed; the last
 *   good set is still served.
 * - `audit_record`: a line of the audit trail (`.certgate-audit.jsonl`,
 *   `.certgate-audit-attempts.jsonl`) that is torn (a crash while it was
 *   written) or damaged; it is skipped.
 * - `audit_file`: an audit trail file changed under the writer: renamed,
 *   replaced or removed (a new file is written), cut short or torn (sealed);
 *   or rotated, with the count of the records dropped.
 */
export type DirectoryProblemCode =
  | "unreadable"
  | "too_large"
  | "not_a_certificate"
  | "private_key"
  | "pkcs12"
  | "invalid_id"
  | "duplicate_id"
  | "not_a_ca"
  | "folder_unavailable"
  | "audit_record"
  | "audit_file";

/**
 * DirectoryStoreProblem is one file (or folder) that `createDirectoryStore`
 * skipped, and why.
 */
export interface DirectoryStoreProblem {
  /** The path of the file or folder, as the folder option plus the file name. */
  readonly path: string;
  /** The file name alone (the folder's own name for folder problems). */
  readonly file: string;
  /** Why, machine-readable. */
  readonly code: DirectoryProblemCode;
  /** Why, for people. */
  readonly reason: string;
  /** When the problem was found. */
  readonly time: Date;
}

/**
 * FileSignature is what tells a changed file from an unchanged one without
 * reading it: replacing a file changes its inode, writing it changes its
 * ctime (and usually size and mtime).
 */
export interface FileSignature {
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
}

/**
 * sameSignature compares two file signatures.
 */
export function sameSignature(a: FileSignature | undefined, b: FileSignature | undefined): boolean {
  return (
    a !== undefined &&
    b !== undefined &&
    a.ino === b.ino &&
    a.size === b.size &&
    a.mtimeMs === b.mtimeMs &&
    a.ctimeMs === b.ctimeMs
  );
}
