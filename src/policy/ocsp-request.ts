// OCSP requests (RFC 6960 section 4.1): the CertID of a certificate, the
// request certgate POSTs, and the responder URL of a certificate's Authority
// Information Access extension.
import { createHash, randomBytes } from "node:crypto";
import type { Certificate } from "../core/certificate.js";
import { childrenOf, decodeOid } from "../core/der.js";
import { readTbsFields } from "../core/tbs-fields.js";
import { readCertificateExtensions } from "./certificate-extensions.js";

/**
 * OcspCertId is the CertID of one certificate: SHA-1 hashes of its issuer's
 * name and key, and its serial number, as responders expect.
 */
export interface OcspCertId {
  /** SHA-1 of the issuer's subject name (DER). */
  readonly issuerNameHash: Uint8Array;
  /** SHA-1 of the issuer's public key (the BIT STRING contents of subjectPublicKey). */
  readonly issuerKeyHash: Uint8Array;
  /** The contents of the certificate's serialNumber INTEGER. */
  readonly serial: Uint8Array;
}

const sha1Oid = new Uint8Array([0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a]);
const nonceOid = new Uint8Array([0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02]);
const aiaOid = "1.3.6.1.5.5.7.1.1";
const ocspAccessMethod = "1.3.6.1.5.5.7.48.1";

/**
 * encodeDer wraps contents in one DER element with the identifier `tag`.
 */
export function encodeDer(tag: number, ...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const header: number[] = [tag];
  if (length < 0x80) header.push(length);
  else {
    const bytes: number[] = [];
    for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256);
    header.push(0x80 | bytes.length, ...bytes);
  }
  const out = new Uint8Array(header.length + length);
  out.set(header, 0);
  let at = header.length;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * ocspCertIdOf computes the CertID of `certificate` issued by `issuer`. It
 * throws a `RangeError` on a malformed encoding.
 */
export function ocspCertIdOf(certificate: Certificate, issuer: Certificate): OcspCertId {
  const serialTlv = readTbsFields(certificate.der, "validity").serialNumber;
  if (serialTlv === undefined || serialTlv.tag !== 0x02) throw new RangeError("der: no serial number");
  const { subject, subjectPublicKeyInfo: spki } = readTbsFields(issuer.der);
  if (subject === undefined || spki === undefined) throw new RangeError("der: short certificate");
  const key = childrenOf(issuer.der, spki)[1];
  if (key === undefined || key.tag !== 0x03) throw new RangeError("der: no subject public key");
  return {
    issuerNameHash: sha1(issuer.der.subarray(subject.start, subject.end)),
    issuerKeyHash: sha1(issuer.der.subarray(key.contentStart + 1, key.end)),
    serial: certificate.der.slice(serialTlv.contentStart, serialTlv.end),
  };
}

function sha1(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha1").update(bytes).digest());
}

/**
 * encodeCertId returns the DER of a CertID (hash algorithm SHA-1).
 */
export function encodeCertId(id: OcspCertId): Uint8Array {
  return encodeDer(
    0x30,
    encodeDer(0x30, sha1Oid, new Uint8Array([0x05, 0x00])),
    encodeDer(0x04, id.issuerNameHash),
    encodeDer(0x04, id.issuerKeyHash),
    encodeDer(0x02, id.serial),
  );
}

/**
 * OcspRequest is a DER OCSPRequest and the nonce it carries.
 */
export interface OcspRequest {
  readonly der: Uint8Array;
  /** The nonce (RFC 8954: 32 random bytes), or undefined when none was sent. */
  readonly nonce: Uint8Array | undefined;
}

/**
 * createOcspRequest encodes an unsigned OCSPRequest for one CertID, with a
 * fresh random nonce unless `nonce` is false.
 */
export function createOcspRequest(id: OcspCertId, nonce = true): OcspRequest {
  const request = encodeDer(0x30, encodeCertId(id));
  const value = nonce ? new Uint8Array(randomBytes(32)) : undefined;
  const extensions =
    value === undefined
      ? []
      : [encodeDer(0xa2, encodeDer(0x30, encodeDer(0x30, nonceOid, encodeDer(0x04, encodeDer(0x04, value)))))];
  const tbs = encodeDer(0x30, encodeDer(0x30, request), ...extensions);
  return { der: encodeDer(0x30, tbs), nonce: value };
}

/**
 * ocspUrlsOf returns the OCSP responder URLs of a certificate's Authority
 * Information Access extension (http and https only), in order.
 */
export function ocspUrlsOf(certificate: Certificate): string[] {
  const der = certificate.der;
  const urls: string[] = [];
  for (const ext of readCertificateExtensions(der)) {
    if (ext.oid !== aiaOid) continue;
    for (const access of childrenOf(der, ext.value)) {
      const [method, location] = childrenOf(der, access);
      if (method?.tag !== 0x06 || location?.tag !== 0x86) continue;
      if (decodeOid(der, method) !== ocspAccessMethod) continue;
      const url = Buffer.from(der.subarray(location.contentStart, location.end)).toString("latin1");
      if (/^https?:\/\//i.test(url)) urls.push(url);
    }
  }
  return urls;
}
