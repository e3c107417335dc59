import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { decodeCertificateFile } from "./certificate-file.js";
import { createDirectoryIndex, type DirectoryIndex } from "./directory-index.js";
import { certificateExtensions, classifyName, compareNames, readFile, statFile } from "./folder-files.js";
import { createScanPlan, type ProblemRecord, type ScanPlan, type ScanResult } from "./scan-plan.js";
import { sameSignature, type DirectoryProblemCode, type DirectoryStoreProblem, type FileSignature } from "./types.js";
import { createYielder, type Yielder } from "./yielder.js";

// The leaf folder: what is on disk turned into index updates. A scan only
// plans (reads, decodes and hashes the files that changed, yielding to the
// event loop as it goes); `apply` then changes the index in one synchronous
// step, so no call ever sees a half-read folder.

/**
 * LeafFolder keeps the index of the leaf folder in step with the disk.
 */
export interface LeafFolder {
  readonly index: DirectoryIndex;
  problems(): DirectoryStoreProblem[];
  /** Re-reads the whole folder (files whose signature did not change are not read). Throws when it cannot be listed. */
  scanAll(): Promise<ScanResult>;
  /** Re-reads the given names and the other files of their ids. */
  scanNames(names: Iterable<string>): Promise<ScanResult>;
}

// crypto.hash (Node 20.12 and later) skips the Hash object: ~1 µs less per
// file. A latin1 string result lives on the V8 heap: no native allocation.
const oneShot = (crypto as unknown as { hash?: (algorithm: string, data: Uint8Array, encoding: "binary") => string })
  .hash;

/**
 * sha256Of hashes one DER certificate to its SHA-256 digest, as a
 * 32-character latin1 string.
 */
export function sha256Of(der: Uint8Array): string {
  return oneShot !== undefined
    ? oneShot("sha256", der, "binary")
    : crypto.createHash("sha256").update(der).digest("binary");
}

/**
 * createLeafFolder returns the (empty) `LeafFolder` of `directory`.
 */
export function createLeafFolder(directory: string, maxFileBytes: number): LeafFolder {
  const index = createDirectoryIndex();
  const problems = new Map<string, ProblemRecord>();
  let first = true;
  // Names from readdir hold no separator: a concatenation is enough, and
  // cheaper than path.join 100k times.
  const prefix = directory.endsWith(path.sep) ? directory : directory + path.sep;
  const join = (name: string) => prefix + name;

  function record(name: string, code: DirectoryProblemCode, reason: string, signature?: FileSignature): ProblemRecord {
    const time = new Date();
    return { signature, problem: { path: join(name), file: name, code, reason, time } };
  }

  // Reads the winning file of an id, unless its signature says nothing
  // changed since it was last read. Returns false when the name is not a
  // regular file (so the next candidate may win).
  function examine(id: string, name: string, plan: ScanPlan): boolean {
    const file = join(name);
    const known = index.file(id);
    const problem = problems.get(name);
    if ((known !== undefined && known.name === name) || problem?.signature !== undefined) {
      const stat = statFile(file);
      if (stat.kind === "file") {
        if (known?.name === name && sameSignature(stat.signature, known.signature)) {
          plan.clear(name);
          return true;
        }
        if (problem !== undefined && sameSignature(stat.signature, problem.signature)) {
          plan.remove(id);
          return true;
        }
      }
    }
    const read = readFile(file, maxFileBytes);
    switch (read.kind) {
      case "missing":
        plan.clear(name);
        return false;
      case "not_a_file":
        return false;
      case "problem":
        plan.problem(name, record(name, read.code, read.reason, read.signature));
        plan.remove(id);
        return true;
    }
    // Only hashed here: decoded into a reused buffer (see PemDerOptions.transient).
    const decoded = decodeCertificateFile(read.bytes, { transient: true });
    if (decoded.kind === "problem") {
      plan.problem(name, record(name, decoded.code, decoded.reason, read.signature));
      plan.remove(id);
      return true;
    }
    plan.clear(name);
    plan.load({ kind: "load", id, name, signature: read.signature, digests: decoded.ders.map(sha256Of) });
    return true;
  }

  // Decides which of the names of one id holds it (see compareNames); the
  // others are reported as duplicates. `names` exist as far as we know.
  async function resolve(id: string, names: string[], plan: ScanPlan, yielder: Yielder): Promise<void> {
    if (names.length > 1) names.sort(compareNames);
    let winner: string | undefined;
    for (const name of names) {
      if (winner === undefined) {
        if (examine(id, name, plan)) winner = name;
        await yielder.maybeYield();
      } else {
        plan.problem(name, record(name, "duplicate_id", `has the same id as ${winner}, which is loaded instead`));
      }
    }
    if (winner === undefined && index.file(id) !== undefined) {
      plan.remove(id);
    }
  }

  function otherName(name: string, plan: ScanPlan): void {
    const kind = classifyName(name);
    if (kind.kind !== "secret" && !(kind.kind === "certificate" && !kind.validId)) {
      plan.clear(name);
      return;
    }
    const stat = statFile(join(name));
    if (stat.kind !== "file") {
      plan.clear(name);
    } else if (kind.kind === "secret") {
      const what = kind.code === "pkcs12" ? "a PKCS#12 archive" : "a private key file";
      plan.problem(name, record(name, kind.code, `is ${what}; never loaded as trust`, stat.signature));
    } else {
      plan.problem(
        name,
        record(
          name,
          "invalid_id",
          "file name is not a valid id (letters, digits, '.', '_', '-'; 1 to 128; not starting with '.')",
          stat.signature,
        ),
      );
    }
  }

  return {
    index,
    problems: () => [...problems.values()].map((r) => r.problem),
    async scanAll() {
      const names = await fs.promises.readdir(directory);
      const direct = index.files === 0 && problems.size === 0 && first;
      first = false;
      const plan = createScanPlan(index, problems, direct);
      if (direct) index.reserve(names.length);
      const yielder = createYielder();
      const groups = new Map<string, string | string[]>();
      for (const name of names) {
        const kind = classifyName(name);
        if (kind.kind === "certificate" && kind.validId) {
          const group = groups.get(kind.id);
          groups.set(
            kind.id,
            group === undefined ? name : typeof group === "string" ? [group, name] : [...group, name],
          );
        } else if (kind.kind !== "ignored" && kind.kind !== "kubernetes") {
          otherName(name, plan);
        }
      }
      for (const [id, group] of groups) {
        await resolve(id, typeof group === "string" ? [group] : group, plan, yielder);
      }
      for (const id of index.ids()) {
        if (!groups.has(id)) plan.remove(id);
      }
      if (problems.size > 0) {
        const present = new Set(names);
        for (const name of problems.keys()) {
          if (!present.has(name)) plan.clear(name);
        }
      }
      return plan.finish();
    },
    async scanNames(names) {
      // A folder being removed reports its files gone one by one: never
      // apply those removals once the folder itself is missing.
      await fs.promises.stat(directory);
      const plan = createScanPlan(index, problems, false);
      const yielder = createYielder();
      const ids = new Map<string, Set<string>>();
      for (const name of names) {
        const kind = classifyName(name);
        if (kind.kind === "certificate" && kind.validId) {
          const set = ids.get(kind.id) ?? new Set<string>();
          set.add(name);
          ids.set(kind.id, set);
        } else {
          otherName(name, plan);
        }
      }
      for (const [id, set] of ids) {
        const known = index.file(id);
        if (known !== undefined) set.add(known.name);
        for (const ext of certificateExtensions) {
          if (problems.has(id + ext)) set.add(id + ext);
        }
        const existing: string[] = [];
        for (const name of set) {
          const stat = statFile(join(name));
          if (stat.kind === "missing") plan.clear(name);
          else existing.push(name);
        }
        await resolve(id, existing, plan, yielder);
      }
      fs.statSync(directory);
      return plan.finish();
    },
  };
}
