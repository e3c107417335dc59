import { X509Certificate } from "node:crypto";
import { canonicalSerialNumber } from "./serial-number.js";
import { digest } from "./thumbprint.js";

/**
 * Certificate is certgate's model of one X.509 certificate: the fields that
 * policies and people look at, and both thumbprints in the upper-case hex form
 * that certificate dialogs and gateway portals show.
 *
 * Instances are immutable and built once per TLS connection (or per stored
 * file), never per call.
 */
export interface Certificate {
  /** SHA-1 thumbprint, 40 upper-case hex digits (the portal's format). */
  readonly sha1: string;
  /** SHA-256 thumbprint, 64 upper-case hex digits. */
  readonly sha256: string;
  /** Subject distinguished name, one `key=value` per line as Node prints it. */
  readonly subject: string;
  /** Issuer distinguished name, one `key=value` per line as Node prints it. */
  readonly issuer: string;
  /**
   * Serial number, upper-case hex, two digits per byte, `-` when negative:
   * as OpenSSL prints it (see `canonicalSerialNumber`).
   */
  readonly serialNumber: string;
  /** Start of the validity window. */
  readonly notBefore: Date;
  /** End of the validity window. */
  readonly notAfter: Date;
  /** Subject alternative names, grouped by kind. */
  readonly subjectAltNames: SubjectAltNames;
  /** Whether the basic constraints extension marks this as a CA certificate. */
  readonly isCA: boolean;
  /** The DER encoding. */
  readonly der: Uint8Array;
  /** Node's parsed form, for callers that need more than the fields above. */
  readonly x509: X509Certificate;
}

/**
 * SubjectAltNames holds the subject alternative names of a certificate.
 */
export interface SubjectAltNames {
  readonly dns: readonly string[];
  readonly uri: readonly string[];
  readonly email: readonly string[];
  readonly ip: readonly string[];
}

/**
 * CertificateInput is what `parseCertificate` accepts: PEM text, DER bytes,
 * or a certificate Node already parsed (such as `getPeerX509Certificate()`).
 */
export type CertificateInput = string | Uint8Array | X509Certificate;

/**
 * parseCertificate builds a `Certificate` from PEM text (the first
 * certificate), DER bytes, or a Node `X509Certificate`. It throws on input
 * that is not a certificate, including DER with bytes after the certificate.
 *
 * Each field is read from Node's parsed form the first time it is asked
 * for, and kept: a decision on a new connection reads a thumbprint and the
 * validity dates, and the names, serial and subject alternative names cost
 * nothing unless a policy, `onDecision` or a handler reads them.
 */
export function parseCertificate(input: CertificateInput): Certificate {
  const x509 = input instanceof X509Certificate ? input : new X509Certificate(input);
  // OpenSSL reads the first DER element and ignores what follows; no proxy,
  // file or upload that certgate reads sends such bytes, so they are refused.
  if (input instanceof Uint8Array && input[0] === 0x30) {
    const raw = x509.raw;
    if (input.length !== raw.length) {
      throw new TypeError("not a certificate: bytes after the DER certificate");
    }
    // OpenSSL also mends some encodings that DER forbids (a BIT STRING's
    // unused bits set): the certificate it read is not the bytes given, and
    // its thumbprint would not be theirs.
    if (!raw.equals(input)) {
      throw new TypeError("not a certificate: not in DER form (OpenSSL reads it as other bytes)");
    }
  }
  return lazyCertificate(x509, undefined);
}

/**
 * PeerCertificateInfo is the part of Node's `getPeerCertificate(false)`
 * that certgate reads on a new connection.
 */
export interface PeerCertificateInfo {
  readonly raw: Uint8Array;
  readonly fingerprint: string;
  readonly fingerprint256: string;
  readonly valid_from: string;
  readonly valid_to: string;
}

/**
 * certificateOfPeerInfo builds a `Certificate` from what Node's TLS layer
 * reports of a peer (`socket.getPeerCertificate(false)`), without building
 * an `X509Certificate`. Node's parsed form is made from the DER only when a
 * field that needs it is first asked for. That DER is what OpenSSL already
 * parsed during the handshake, so Node parses it again; should it not, the
 * field's getter throws and a policy refuses the call (fail closed).
 */
export function certificateOfPeerInfo(info: PeerCertificateInfo): Certificate {
  const raw = info.raw;
  if (!(raw instanceof Uint8Array) || raw.length === 0) {
    throw new TypeError("not a certificate: no DER from the TLS layer");
  }
  return lazyCertificate(undefined, {
    der: raw,
    sha1: info.fingerprint.replaceAll(":", ""),
    sha256: info.fingerprint256.replaceAll(":", ""),
    notBefore: new Date(info.valid_from),
    notAfter: new Date(info.valid_to),
  });
}

/**
 * certificateOfPeerDer builds a `Certificate` from the DER of a certificate
 * that the TLS layer already accepted in a handshake (see
 * `peerDerOfTlsSession`) and its validity window (`readValidity`). The
 * thumbprints are hashed from the DER when first asked for; Node's parsed
 * form is made only when another field is, as in `certificateOfPeerInfo`.
 */
export function certificateOfPeerDer(der: Uint8Array, validity: { notBefore: Date; notAfter: Date }): Certificate {
  return lazyCertificate(undefined, {
    der,
    notBefore: validity.notBefore,
    notAfter: validity.notAfter,
  });
}

// What is known of a certificate before Node parses it.
interface KnownFields {
  readonly der: Uint8Array;
  readonly sha1?: string;
  readonly sha256?: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

// Either Node's parsed form or the known fields (with the DER) are given.
// Each field is an own enumerable getter, so that a certificate spreads and
// prints like a plain object of its fields.
function lazyCertificate(parsed: X509Certificate | undefined, known: KnownFields | undefined): Certificate {
  let x509 = parsed;
  let der: Uint8Array | undefined = known?.der;
  let sha1: string | undefined = known?.sha1;
  let sha256: string | undefined = known?.sha256;
  let notBefore: Date | undefined = known?.notBefore;
  let notAfter: Date | undefined = known?.notAfter;
  let subject: string | undefined;
  let issuer: string | undefined;
  let serialNumber: string | undefined;
  let subjectAltNames: SubjectAltNames | undefined;
  let isCA: boolean | undefined;
  // Node parses the DER only when a field needs it. That DER is what OpenSSL
  // accepted in the handshake; should Node not parse it, the getter throws
  // and a policy refuses the call (fail closed).
  const x509Of = () => (x509 ??= new X509Certificate(der as Uint8Array));
  const certificate: Certificate = {
    // Without the DER in hand, Node's fingerprints hash it natively,
    // without copying it out.
    get sha1() {
      return (sha1 ??= der === undefined ? x509Of().fingerprint.replaceAll(":", "") : digest("sha1", der));
    },
    get sha256() {
      return (sha256 ??= der === undefined ? x509Of().fingerprint256.replaceAll(":", "") : digest("sha256", der));
    },
    get subject() {
      return (subject ??= x509Of().subject);
    },
    get issuer() {
      return (issuer ??= x509Of().issuer);
    },
    get serialNumber() {
      return (serialNumber ??= canonicalSerialNumber(x509Of().serialNumber));
    },
    get notBefore() {
      return (notBefore ??= validityDate(x509Of(), "validFrom"));
    },
    get notAfter() {
      return (notAfter ??= validityDate(x509Of(), "validTo"));
    },
    get subjectAltNames() {
      return (subjectAltNames ??= parseSubjectAltNames(x509Of().subjectAltName));
    },
    get isCA() {
      return (isCA ??= x509Of().ca);
    },
    get der() {
      return (der ??= new Uint8Array(x509Of().raw));
    },
    get x509() {
      return x509Of();
    },
  };
  return Object.freeze(certificate);
}

// Node 22.10 and later parse the dates themselves (validFromDate,
// validToDate); before, the printed form is parsed. An unreadable date is an
// invalid Date, which the decision core refuses.
function validityDate(x509: X509Certificate, field: "validFrom" | "validTo"): Date {
  const parsed = (x509 as unknown as Record<string, unknown>)[`${field}Date`];
  return parsed instanceof Date ? parsed : new Date(x509[field]);
}

// Node prints subjectAltName as `DNS:a, URI:b, IP Address:c`; values that
// contain a comma or quote are JSON-quoted (Node >= 17.3).
function parseSubjectAltNames(text: string | undefined): SubjectAltNames {
  const dns: string[] = [];
  const uri: string[] = [];
  const email: string[] = [];
  const ip: string[] = [];
  if (text !== undefined) {
    for (const entry of splitSubjectAltName(text)) {
      const colon = entry.indexOf(":");
      if (colon < 0) {
        continue;
      }
      const kind = entry.slice(0, colon);
      let value = entry.slice(colon + 1);
      if (value.startsWith('"')) {
        try {
          value = JSON.parse(value) as string;
        } catch {
          // Keep the raw text: a malformed quote must not hide the entry.
        }
      }
      switch (kind) {
        case "DNS":
          dns.push(value);
          break;
        case "URI":
          uri.push(value);
          break;
        case "email":
          email.push(value);
          break;
        case "IP Address":
          ip.push(value);
          break;
      }
    }
  }
  return Object.freeze({ dns, uri, email, ip });
}

function splitSubjectAltName(text: string): string[] {
  const parts: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "\\" && quoted) {
      i++;
    } else if (c === '"') {
      quoted = !quoted;
    } else if (c === "," && !quoted) {
      parts.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  parts.push(text.slice(start).trim());
  return parts.filter((p) => p.length > 0);
}
