import { decodePemOrDer } from "../core/pem-der.js";
import { parseCrl, type ParsedCrl } from "./crl.js";
import { createFileSource, type FileSourceOptions } from "./file-source.js";

/**
 * CrlSet is a set of certificate revocation lists that may change, for
 * `validateRevocation`. Signatures are not checked here but when the CRLs
 * are matched with their issuing CAs.
 */
export interface CrlSet {
  /** Changes whenever the CRLs change; read on every decision. */
  readonly revision: number;
  readonly crls: readonly ParsedCrl[];
  /** Registers a listener called after every change; returns its removal. */
  onChange(listener: (revision: number) => void): () => void;
  /** Stops watching; the CRLs stay as they were. */
  close(): Promise<void>;
}

/**
 * CrlSetInput is what `validateRevocation.crls` accepts: a `CrlSet`, or CRLs
 * given once as PEM text (`X509 CRL` blocks) or DER bytes.
 */
export type CrlSetInput = CrlSet | readonly (string | Uint8Array)[];

function crlsOf(input: string | Uint8Array, where: string): ParsedCrl[] {
  if (typeof input === "string" && !input.includes("-----BEGIN")) throw new Error(`${where} is neither PEM nor DER`);
  const decoded = decodePemOrDer(input, { labels: ["X509 CRL", "CRL"], otherBlocks: "skip" });
  if (decoded.kind === "problem") {
    switch (decoded.code) {
      case "private_key":
      case "pkcs12":
        throw new Error(`${where} holds a private key; give certgate CRLs only`);
      case "broken_pem":
      case "broken_base64":
        throw new Error(`${where} has a broken PEM block`);
      default:
        throw new Error(`${where} is neither PEM nor DER`);
    }
  }
  if (decoded.ders.length === 0) throw new Error(`${where} holds no X509 CRL block`);
  if (!decoded.pem && decoded.ders.length > 1) throw new Error(`${where} holds more than one DER structure`);
  return decoded.ders.map((der) => parseCrl(der, where));
}

/**
 * createCrlSet returns a fixed `CrlSet`. It throws a `TypeError` naming the
 * entry that is not a CRL.
 */
export function createCrlSet(crls: Iterable<string | Uint8Array>): CrlSet {
  const list: ParsedCrl[] = [];
  let i = 0;
  for (const input of crls) {
    try {
      list.push(...crlsOf(input, `crls[${i}]`));
    } catch (error) {
      throw new TypeError(`certgate: crls[${i}] could not be read: ${(error as Error).message}`);
    }
    i++;
  }
  if (list.length === 0) throw new TypeError("certgate: validateRevocation.crls is empty");
  return { revision: 1, crls: Object.freeze(list), onChange: () => () => undefined, close: () => Promise.resolve() };
}

/**
 * isCrlSet tells a `CrlSet` from a list of CRLs.
 */
export function isCrlSet(input: unknown): input is CrlSet {
  return (
    typeof input === "object" &&
    input !== null &&
    !Array.isArray(input) &&
    typeof (input as CrlSet).onChange === "function"
  );
}

/**
 * toCrlSet turns a `CrlSetInput` into a `CrlSet`.
 */
export function toCrlSet(input: CrlSetInput): CrlSet {
  return isCrlSet(input) ? input : createCrlSet(input);
}

/**
 * createCrlFileSet reads CRLs (PEM or DER; `.crl`, `.pem`, `.der`) from
 * files or a folder, and reloads them as soon as they change (`fs.watch`,
 * with a periodic look as a fallback). Replace a CRL file by writing a new
 * file and renaming it over the old one. It rejects with an error naming the
 * problem when a file cannot be read or parsed, or no CRL is found. Close it
 * when done.
 *
 * @example
 * const crls = await createCrlFileSet({ directory: "/etc/certgate/crl" });
 */
export async function createCrlFileSet(options: FileSourceOptions): Promise<CrlSet> {
  const source = await createFileSource("CRLs", options, [".crl", ".pem", ".der"], (bytes, path) =>
    crlsOf(bytes, path),
  );
  return {
    get revision() {
      return source.revision;
    },
    get crls() {
      return source.items;
    },
    onChange: source.onChange,
    close: source.close,
  };
}

/**
 * mergeCrlSets returns one `CrlSet` holding the CRLs of both sets, such as
 * CRL files and CRLs fetched from distribution points.
 */
export function mergeCrlSets(a: CrlSet, b: CrlSet): CrlSet {
  return {
    get revision() {
      return a.revision + b.revision;
    },
    get crls() {
      return [...a.crls, ...b.crls];
    },
    onChange(listener) {
      const offA = a.onChange(() => listener(a.revision + b.revision));
      const offB = b.onChange(() => listener(a.revision + b.revision));
      return () => {
        offA();
        offB();
      };
    },
    close: async () => {
      await Promise.all([a.close(), b.close()]);
    },
  };
}
