// Test PKI for the policy suites: chains of depth 1 to 3, CRLs, all generated
// at run time (never committed).
import "reflect-metadata";
import { createPrivateKey, sign, type webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import {
  createDevCa,
  issueDevCertificate,
  type DevCertificateOptions,
  type IssuedCertificate,
} from "../../src/dev-certificates.js";

const signingAlgorithm = { name: "ECDSA", hash: "SHA-256" } as const;

/** A root, two intermediates below it, leaves at depth 1, 2 and 3, and another root. */
export interface PolicyPki {
  root: IssuedCertificate;
  int1: IssuedCertificate;
  int2: IssuedCertificate;
  /** Issued by the root directly. */
  leaf1: IssuedCertificate;
  /** Issued by int1. */
  leaf2: IssuedCertificate;
  /** Issued by int2 (root → int1 → int2 → leaf3). */
  leaf3: IssuedCertificate;
  /** An unrelated root and a leaf of it. */
  otherRoot: IssuedCertificate;
  stranger: IssuedCertificate;
  /** A leaf of the root without clientAuth in its EKU. */
  serverOnly: IssuedCertificate;
  /** The TLS server certificate (issued by the root). */
  server: IssuedCertificate;
}

export async function createPolicyPki(): Promise<PolicyPki> {
  const root = await createDevCa({ commonName: "Policy Root", subjectSuffix: "O=Contoso\\, Inc., C=US" });
  const int1 = await issueDevCertificate(root, {
    commonName: "Policy Int 1",
    subjectSuffix: "O=Contoso\\, Inc., C=US",
    isCA: true,
    usages: [],
  });
  const int2 = await issueDevCertificate(int1, {
    commonName: "Policy Int 2",
    subjectSuffix: "O=Contoso\\, Inc., C=US",
    isCA: true,
    usages: [],
  });
  const leaf1 = await issueDevCertificate(root, {
    commonName: "alice",
    subjectSuffix: "OU=Payments, O=Contoso\\, Inc., C=US",
    dnsNames: ["alice.example.org"],
    uris: ["spiffe://example.org/ns/prod/sa/alice"],
    usages: ["client"],
  });
  const leaf2 = await issueDevCertificate(int1, {
    commonName: "bob",
    subjectSuffix: "O=Contoso\\, Inc., C=US",
    usages: ["client"],
  });
  const leaf3 = await issueDevCertificate(int2, {
    commonName: "carol",
    subjectSuffix: "O=Contoso\\, Inc., C=US",
    usages: ["client"],
  });
  const otherRoot = await createDevCa({ commonName: "Other Root" });
  const stranger = await issueDevCertificate(otherRoot, {
    commonName: "alice",
    subjectSuffix: "OU=Payments, O=Contoso\\, Inc., C=US",
    usages: ["client"],
  });
  const serverOnly = await issueDevCertificate(root, { commonName: "server-only", usages: ["server"] });
  const server = await issueDevCertificate(root, {
    commonName: "localhost",
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1"],
    usages: ["server"],
  });
  return { root, int1, int2, leaf1, leaf2, leaf3, otherRoot, stranger, serverOnly, server };
}

/** What a test CRL says. */
export interface CrlOptions {
  /** Serial numbers (hex) to list as revoked. By default, none. */
  revoked?: string[];
  /** By default, one hour ago. */
  thisUpdate?: Date;
  /** By default, in one day; `null` for none. */
  nextUpdate?: Date | null;
  /** Sign with this key instead of the issuer's (a badly signed CRL). */
  signingKey?: webcrypto.CryptoKey;
  /** Extensions of the CRL. */
  extensions?: x509.Extension[];
}

function tlv(tag: number, ...parts: Uint8Array[]): Uint8Array {
  const body = Buffer.concat(parts);
  const n = body.length;
  const length =
    n < 0x80
      ? [n]
      : n < 0x100
        ? [0x81, n]
        : n < 0x10000
          ? [0x82, n >> 8, n & 0xff]
          : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...length]), body]);
}

function utcTime(date: Date): Uint8Array {
  const iso = date.toISOString(); // 2026-11-28T14:19:43.000Z
  const text = `${iso.slice(2, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  return tlv(0x17, Buffer.from(text, "latin1"));
}

function integer(hex: string): Uint8Array {
  let bytes = Buffer.from(hex.length % 2 === 0 ? hex : `0${hex}`, "hex");
  if ((bytes[0] ?? 0) & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return tlv(0x02, bytes);
}

// The issuer's subject Name, as encoded in its certificate.
function subjectDer(issuer: IssuedCertificate): Uint8Array {
  const der = issuer.der;
  const read = (offset: number) => {
    let length = der[offset + 1] ?? 0;
    let start = offset + 2;
    if (length & 0x80) {
      const count = length & 0x7f;
      length = 0;
      for (let i = 0; i < count; i++) length = length * 256 + (der[start + i] ?? 0);
      start += count;
    }
    return { offset, start, end: start + length };
  };
  const tbs = read(read(0).start);
  let at = tbs.start;
  const fields = [];
  while (at < tbs.end) {
    const f = read(at);
    fields.push(f);
    at = f.end;
  }
  const first = der[tbs.start] === 0xa0 ? 1 : 0;
  const subject = fields[first + 4] as { offset: number; end: number };
  return der.subarray(subject.offset, subject.end);
}

/**
 * Generates a CRL issued by `issuer`, PEM: with @peculiar/x509's
 * X509CrlGenerator, or for long lists (over 1,000 serials) encoded and
 * signed here with node:crypto (ECDSA P-256, SHA-256), since the generator
 * takes seconds for 10,000 serials.
 */
export async function createCrl(issuer: IssuedCertificate, options: CrlOptions = {}): Promise<string> {
  if ((options.revoked ?? []).length <= 1000) return createCrlWithGenerator(issuer, options);
  const algorithm = tlv(0x30, tlv(0x06, Buffer.from("2a8648ce3d040302", "hex")));
  const revokedAt = utcTime(new Date(Date.now() - 60_000));
  const revoked = options.revoked ?? [];
  const tbs = tlv(
    0x30,
    tlv(0x02, Buffer.from([1])),
    algorithm,
    subjectDer(issuer),
    utcTime(options.thisUpdate ?? new Date(Date.now() - 3600_000)),
    ...(options.nextUpdate === null ? [] : [utcTime(options.nextUpdate ?? new Date(Date.now() + 86400_000))]),
    ...(revoked.length === 0 ? [] : [tlv(0x30, ...revoked.map((serial) => tlv(0x30, integer(serial), revokedAt)))]),
  );
  const key = options.signingKey ?? (issuer.keys.privateKey as webcrypto.CryptoKey);
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", key));
  const signature = sign("sha256", tbs, createPrivateKey({ key: Buffer.from(pkcs8), format: "der", type: "pkcs8" }));
  const der = tlv(0x30, tbs, algorithm, tlv(0x03, Buffer.from([0]), signature));
  return `-----BEGIN X509 CRL-----\n${Buffer.from(der)
    .toString("base64")
    .replace(/(.{64})/g, "$1\n")}\n-----END X509 CRL-----\n`;
}

async function createCrlWithGenerator(issuer: IssuedCertificate, options: CrlOptions): Promise<string> {
  const crl = await x509.X509CrlGenerator.create({
    issuer: issuer.x509.subjectName,
    thisUpdate: options.thisUpdate ?? new Date(Date.now() - 3600_000),
    ...(options.nextUpdate === null ? {} : { nextUpdate: options.nextUpdate ?? new Date(Date.now() + 86400_000) }),
    entries: (options.revoked ?? []).map((serialNumber) => ({
      serialNumber,
      revocationDate: new Date(Date.now() - 60_000),
    })),
    signingAlgorithm,
    signingKey: options.signingKey ?? (issuer.keys.privateKey as webcrypto.CryptoKey),
    ...(options.extensions === undefined ? {} : { extensions: options.extensions }),
  });
  return crl.toString("pem");
}

/** Serial number of a generated certificate, hex. */
export function serialOf(issued: IssuedCertificate): string {
  return issued.x509.serialNumber;
}

/** A leaf with options of its own. */
export function issue(
  issuer: IssuedCertificate | undefined,
  options: DevCertificateOptions,
): Promise<IssuedCertificate> {
  return issueDevCertificate(issuer, options);
}
