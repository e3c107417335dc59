import { PFX } from "pkijs";
import { readPkcs12Certificates } from "../src/core/pkcs12-certificates.js";
import { type CertificateFacts, factsOf, sha256Hex } from "./x509.js";

/** Candidate is one certificate found in a file, ready to upload. */
export interface Candidate {
  /** Its DER: all that is ever sent. */
  readonly der: Uint8Array;
  readonly facts: CertificateFacts;
  readonly sha256: string;
}

/** FileEntry is what a dropped or picked file holds. */
export type FileEntry =
  | { readonly kind: "certificates"; readonly candidates: Candidate[]; readonly notes: string[] }
  | { readonly kind: "pkcs12"; readonly bytes: Uint8Array }
  | { readonly kind: "problem"; readonly reason: string };

const pemBlock = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

async function candidate(der: Uint8Array): Promise<Candidate> {
  return { der, facts: factsOf(der), sha256: await sha256Hex(der) };
}

function base64(text: string): Uint8Array {
  const binary = atob(text.replace(/[\s\r\n]/g, ""));
  return Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
}

/**
 * readCertificateFile finds the certificates of one file: PEM (one or a
 * bundle; private key blocks are noted and left out), DER, or PKCS#12,
 * which needs its password (`openPkcs12`).
 */
export async function readCertificateFile(name: string, bytes: Uint8Array): Promise<FileEntry> {
  const lower = name.toLowerCase();
  if (lower.endsWith(".p12") || lower.endsWith(".pfx")) return { kind: "pkcs12", bytes };
  const text = new TextDecoder("latin1").decode(bytes.subarray(0, Math.min(bytes.length, 1 << 22)));
  if (text.includes("-----BEGIN ")) {
    const candidates: Candidate[] = [];
    const notes: string[] = [];
    for (const m of text.matchAll(pemBlock)) {
      const label = m[1] ?? "";
      if (label === "CERTIFICATE") {
        try {
          candidates.push(await candidate(base64(m[2] ?? "")));
        } catch {
          notes.push(`certificate ${candidates.length + 1} cannot be read and is left out`);
        }
      } else if (label.includes("PRIVATE KEY")) {
        notes.push("the private key in this file stays here: only certificates are uploaded");
      } else {
        notes.push(`a ${label} block is left out`);
      }
    }
    if (candidates.length === 0) return { kind: "problem", reason: "no PEM CERTIFICATE in this file" };
    return { kind: "certificates", candidates, notes };
  }
  try {
    return { kind: "certificates", candidates: [await candidate(bytes)], notes: [] };
  } catch {
    // Not a certificate: a PKCS#12 file under another name?
  }
  try {
    PFX.fromBER(bytes as Uint8Array<ArrayBuffer>);
    return { kind: "pkcs12", bytes };
  } catch {
    return { kind: "problem", reason: "neither PEM, DER nor PKCS#12" };
  }
}

/**
 * openPkcs12 decrypts a PKCS#12 file with its password and returns its
 * certificates, with the reader `certgate upload` uses
 * (`readPkcs12Certificates`): the key bags are never decrypted, and the
 * private key never leaves the browser.
 */
export async function openPkcs12(bytes: Uint8Array, password: string): Promise<Candidate[]> {
  const read = await readPkcs12Certificates(bytes, password);
  if (read.kind === "problem") throw new Error(read.reason);
  return Promise.all(read.ders.map(candidate));
}
