import { parseCertificate, type Certificate } from "../core/certificate.js";
import { decodePemOrDer } from "../core/pem-der.js";
import { createChangeNotifier, type WritableCertificateStore } from "../core/store.js";
import { createFileSource, type FileSourceOptions } from "./file-source.js";

/**
 * CertificateSet is a set of CA certificates that may change: the trust
 * anchors and intermediates of `validateTrust`, or the CRL issuers of
 * `validateRevocation`.
 */
export interface CertificateSet {
  /** Changes whenever the certificates change; read on every decision. */
  readonly revision: number;
  readonly certificates: readonly Certificate[];
  /** Registers a listener called after every change; returns its removal. */
  onChange(listener: (revision: number) => void): () => void;
  /** Stops watching; the certificates stay as they were. */
  close(): Promise<void>;
}

/**
 * CertificateSetInput is what `ca` options accept: a `CertificateSet`, or
 * certificates given once, as PEM text (any number of certificates each),
 * DER bytes or parsed `Certificate`s.
 */
export type CertificateSetInput = CertificateSet | readonly (string | Uint8Array | Certificate)[];

/**
 * isCertificateSet tells a `CertificateSet` from a list of certificates.
 */
export function isCertificateSet(input: unknown): input is CertificateSet {
  return (
    typeof input === "object" &&
    input !== null &&
    !Array.isArray(input) &&
    typeof (input as CertificateSet).onChange === "function"
  );
}

function certificatesOf(input: string | Uint8Array | Certificate, where: string): Certificate[] {
  if (typeof input !== "string" && !(input instanceof Uint8Array)) {
    return [input];
  }
  const decoded = decodePemOrDer(input, { otherBlocks: "skip" });
  if (decoded.kind === "problem") {
    switch (decoded.code) {
      case "private_key":
      case "pkcs12":
        throw new Error(`${where} holds a private key; give certgate certificates only`);
      case "broken_pem":
      case "broken_base64":
        throw new Error(`${where} has a broken PEM block`);
      default:
        throw new Error(`${where} is not a certificate: ${decoded.reason}`);
    }
  }
  if (decoded.ders.length === 0 || (typeof input === "string" && !decoded.pem)) {
    throw new Error(`${where} holds no PEM certificate`);
  }
  return decoded.ders.map((der) => parseCertificate(der));
}

/**
 * createCertificateSet returns a fixed `CertificateSet`. It throws a
 * `TypeError` naming the entry that is not a certificate, or when the list
 * is empty.
 */
export function createCertificateSet(certificates: Iterable<string | Uint8Array | Certificate>): CertificateSet {
  const list: Certificate[] = [];
  let i = 0;
  for (const input of certificates) {
    try {
      list.push(...certificatesOf(input, `certificate ${i}`));
    } catch (error) {
      throw new TypeError(`certgate: certificate ${i} could not be read: ${(error as Error).message}`);
    }
    i++;
  }
  if (list.length === 0) {
    throw new TypeError("certgate: a certificate set needs at least one certificate");
  }
  const frozen = Object.freeze(list);
  return {
    revision: 1,
    certificates: frozen,
    onChange: () => () => undefined,
    close: () => Promise.resolve(),
  };
}

/**
 * toCertificateSet turns a `CertificateSetInput` into a `CertificateSet`.
 */
export function toCertificateSet(input: CertificateSetInput): CertificateSet {
  return isCertificateSet(input) ? input : createCertificateSet(input);
}

/**
 * createCertificateFileSet reads CA certificates from PEM files (any number
 * of certificates each) or DER files (`.der`, `.cer`), named one by one or
 * as a folder, and reloads them when they change. It rejects with an error
 * naming the problem when a file cannot be read or parsed, holds a private
 * key, or no certificate is found. Close it when done.
 *
 * @example
 * const ca = await createCertificateFileSet({ directory: "/etc/certgate/ca" });
 */
export async function createCertificateFileSet(options: FileSourceOptions): Promise<CertificateSet> {
  const source = await createFileSource("CA certificates", options, [".pem", ".crt", ".cer", ".der"], (bytes, path) =>
    certificatesOf(bytes, path),
  );
  return {
    get revision() {
      return source.revision;
    },
    get certificates() {
      return source.items;
    },
    onChange: source.onChange,
    close: source.close,
  };
}

/**
 * CertificateListSource is the part of a `WritableCertificateStore` that
 * `createCertificateSetFromStore` reads: the folder store or the remote store.
 */
export type CertificateListSource = Pick<WritableCertificateStore, "list" | "onChange">;

/**
 * createCertificateSetFromStore reads every certificate of a writable store
 * (a folder store or the remote store) as CA certificates, and reads them
 * again after each change of the store. A reload that fails keeps the last
 * certificates and is reported to `onError` (by default, a process warning).
 * It rejects if the first read fails or finds nothing.
 */
export async function createCertificateSetFromStore(
  store: CertificateListSource,
  options: { onError?: (error: Error) => void } = {},
): Promise<CertificateSet> {
  const onError =
    options.onError ??
    ((error: Error) => process.emitWarning(`certgate: ${error.message}`, { code: "CERTGATE_RELOAD" }));
  const notifier = createChangeNotifier();
  async function read(): Promise<readonly Certificate[]> {
    const out: Certificate[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await store.list({ ...(after === undefined ? {} : { after }), limit: 500 });
      for (const stored of page) {
        out.push(parseCertificate(stored.der));
      }
      if (page.length < 500) return Object.freeze(out);
      after = page[page.length - 1]?.id;
    }
  }
  let certificates = await read();
  if (certificates.length === 0) {
    throw new Error("certgate: CA certificates: the store holds no certificate");
  }
  let closed = false;
  let running: Promise<void> | undefined;
  let again = false;
  const reload = () => {
    if (running !== undefined) {
      again = true;
      return;
    }
    running = (async () => {
      do {
        again = false;
        try {
          const next = await read();
          if (!closed) {
            certificates = next;
            notifier.changed();
          }
        } catch (error) {
          onError(new Error(`CA certificates: reading the store failed: ${String(error)}`));
        }
      } while (again && !closed);
      running = undefined;
    })();
  };
  const unsubscribe = store.onChange(reload);
  return {
    get revision() {
      return notifier.revision;
    },
    get certificates() {
      return certificates;
    },
    onChange: notifier.onChange,
    async close() {
      closed = true;
      unsubscribe();
      notifier.clear();
      await running;
    },
  };
}
