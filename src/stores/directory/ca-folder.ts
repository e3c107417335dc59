import * as fs from "node:fs";
import * as path from "node:path";
import { parseCertificate, type Certificate } from "../../core/certificate.js";
import { readCaConstraints } from "../../policy/certificate-extensions.js";
import { decodeCertificateFile } from "./certificate-file.js";
import { classifyName, readFile } from "./folder-files.js";
import { sameSignature, type DirectoryProblemCode, type DirectoryStoreProblem, type FileSignature } from "./types.js";

/**
 * CaCertificate is one issuer loaded from the CA folder.
 */
export interface CaCertificate {
  /** `ca/<file id>`, or `ca/<file id>#n` for the n-th of a bundle. */
  readonly id: string;
  readonly certificate: Certificate;
}

interface LoadedFile {
  readonly signature: FileSignature;
  readonly cas: CaCertificate[];
  readonly problem: DirectoryStoreProblem | undefined;
}

/**
 * CaFolder holds the issuers of the CA folder, re-reading only the files that
 * changed.
 */
export interface CaFolder {
  readonly cas: readonly CaCertificate[];
  problems(): DirectoryStoreProblem[];
  /**
   * Re-reads the folder. Resolves whether the set of issuers changed, and
   * the problems not known before. Throws when the folder cannot be listed.
   */
  scan(): Promise<{ changed: boolean; newProblems: DirectoryStoreProblem[] }>;
}

/**
 * caProblem tells why a certificate may not act as an issuer, or undefined:
 * basicConstraints must say cA, and keyUsage, when present (RFC 5280 wants
 * it), must allow keyCertSign.
 */
export function caProblem(certificate: Certificate): string | undefined {
  const constraints = readCaConstraints(certificate.der);
  if (!constraints.isCA) {
    return "not a CA certificate: basicConstraints does not say cA";
  }
  if (!constraints.keyCertSign) {
    return "not a CA certificate: keyUsage does not allow keyCertSign";
  }
  return undefined;
}

/**
 * createCaFolder returns the (empty) `CaFolder` of `directory`.
 */
export function createCaFolder(directory: string, maxFileBytes: number): CaFolder {
  let files = new Map<string, LoadedFile>();
  let cas: CaCertificate[] = [];
  let key = "";

  function load(name: string, id: string): LoadedFile | undefined {
    const file = path.join(directory, name);
    const read = readFile(file, maxFileBytes);
    if (read.kind === "missing" || read.kind === "not_a_file") return undefined;
    const fail = (signature: FileSignature | undefined, code: DirectoryProblemCode, reason: string): LoadedFile => ({
      signature: signature ?? { ino: -1, size: -1, mtimeMs: -1, ctimeMs: -1 },
      cas: [],
      problem: { path: file, file: name, code, reason, time: new Date() },
    });
    if (read.kind === "problem") return fail(read.signature, read.code, read.reason);
    const decoded = decodeCertificateFile(read.bytes);
    if (decoded.kind === "problem") return fail(read.signature, decoded.code, decoded.reason);
    const loaded: CaCertificate[] = [];
    for (const [i, der] of decoded.ders.entries()) {
      let certificate: Certificate;
      let problem: string | undefined;
      try {
        certificate = parseCertificate(der.slice());
        problem = caProblem(certificate);
      } catch (error) {
        return fail(read.signature, "not_a_certificate", `certificate ${i + 1} cannot be parsed: ${String(error)}`);
      }
      if (problem !== undefined) return fail(read.signature, "not_a_ca", problem);
      loaded.push({ id: i === 0 ? `ca/${id}` : `ca/${id}#${i + 1}`, certificate });
    }
    return { signature: read.signature, cas: loaded, problem: undefined };
  }

  return {
    get cas() {
      return cas;
    },
    problems: () => [...files.values()].flatMap((f) => (f.problem === undefined ? [] : [f.problem])),
    async scan() {
      const names = (await fs.promises.readdir(directory)).sort();
      const next = new Map<string, LoadedFile>();
      const newProblems: DirectoryStoreProblem[] = [];
      for (const name of names) {
        const kind = classifyName(name);
        if (kind.kind === "secret") {
          const what = kind.code === "pkcs12" ? "a PKCS#12 archive" : "a private key file";
          const previous = files.get(name);
          const problem = previous?.problem ?? {
            path: path.join(directory, name),
            file: name,
            code: kind.code,
            reason: `is ${what}; never loaded as trust`,
            time: new Date(),
          };
          if (previous === undefined) newProblems.push(problem);
          next.set(name, { signature: { ino: -1, size: -1, mtimeMs: -1, ctimeMs: -1 }, cas: [], problem });
          continue;
        }
        if (kind.kind !== "certificate") continue;
        const previous = files.get(name);
        if (previous !== undefined && previous.signature.ino !== -1) {
          const stat = fs.statSync(path.join(directory, name), { throwIfNoEntry: false });
          const signature = stat && { ino: stat.ino, size: stat.size, mtimeMs: stat.mtimeMs, ctimeMs: stat.ctimeMs };
          if (sameSignature(signature, previous.signature)) {
            next.set(name, previous);
            continue;
          }
        }
        const loaded = load(name, kind.id);
        if (loaded === undefined) continue;
        next.set(name, loaded);
        if (loaded.problem !== undefined && previous?.problem?.reason !== loaded.problem.reason) {
          newProblems.push(loaded.problem);
        }
      }
      files = next;
      const all = [...next.values()].flatMap((f) => f.cas);
      const nextKey = all.map((c) => `${c.id}=${c.certificate.sha256}`).join(",");
      const changed = nextKey !== key;
      key = nextKey;
      cas = all;
      return { changed, newProblems };
    },
  };
}
