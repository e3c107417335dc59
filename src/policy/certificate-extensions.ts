import type { Certificate } from "../core/certificate.js";
import { childrenOf, decodeOid, readTlv, type Tlv } from "../core/der.js";
import { serialNumberOfDer } from "../core/serial-number.js";
import { readTbsFields } from "../core/tbs-fields.js";

/**
 * ExtensionEntry is one X.509 extension: its OID, whether it is critical, and
 * where its value (the contents of the OCTET STRING) sits.
 */
export interface ExtensionEntry {
  readonly oid: string;
  readonly critical: boolean;
  readonly value: Tlv;
}

/**
 * readExtensionList reads a `SEQUENCE OF Extension`.
 */
export function readExtensionList(der: Uint8Array, list: Tlv): ExtensionEntry[] {
  return childrenOf(der, list).map((ext) => {
    const parts = childrenOf(der, ext);
    const oid = parts[0];
    const critical = parts.length === 3 && parts[1]?.tag === 0x01 && der[parts[1].contentStart] !== 0;
    const octets = parts[parts.length - 1];
    if (oid === undefined || oid.tag !== 0x06 || octets === undefined || octets.tag !== 0x04) {
      throw new RangeError("der: bad extension");
    }
    return { oid: decodeOid(der, oid), critical, value: readTlv(der, octets.contentStart, octets.end) };
  });
}

/**
 * readCertificateExtensions reads the extensions of a DER certificate, in
 * order (none for a certificate without them). It throws a `RangeError` on
 * a malformed encoding.
 */
export function readCertificateExtensions(der: Uint8Array): ExtensionEntry[] {
  const { extensions } = readTbsFields(der);
  return extensions === undefined ? [] : readExtensionList(der, extensions);
}

/**
 * CaConstraints are the extensions that decide whether a certificate may
 * issue others: basic constraints and key usage.
 */
export interface CaConstraints {
  /** The basic constraints cA flag. */
  readonly isCA: boolean;
  /** The pathLenConstraint, or undefined for none. */
  readonly pathLength: number | undefined;
  /** Whether key usage allows keyCertSign (true when there is no key usage extension). */
  readonly keyCertSign: boolean;
  /** Whether key usage allows cRLSign (true when there is no key usage extension). */
  readonly crlSign: boolean;
}

/**
 * readCaConstraints reads basic constraints and key usage from a DER
 * certificate. It throws a `RangeError` on a malformed encoding.
 */
export function readCaConstraints(der: Uint8Array): CaConstraints {
  let isCA = false;
  let pathLength: number | undefined;
  let keyCertSign = true;
  let crlSign = true;
  for (const ext of readCertificateExtensions(der)) {
    if (ext.oid === "2.5.29.19") {
      for (const part of childrenOf(der, ext.value)) {
        if (part.tag === 0x01) isCA = der[part.contentStart] !== 0;
        if (part.tag === 0x02) pathLength = readSmallInteger(der, part);
      }
    } else if (ext.oid === "2.5.29.15") {
      const first = der[ext.value.contentStart + 1] ?? 0;
      keyCertSign = (first & 0x04) !== 0;
      crlSign = (first & 0x02) !== 0;
    }
  }
  return { isCA, pathLength, keyCertSign, crlSign };
}

function readSmallInteger(der: Uint8Array, tlv: Tlv): number {
  let n = 0;
  for (let i = tlv.contentStart; i < tlv.end; i++) n = n * 256 + (der[i] ?? 0);
  return n;
}

/**
 * serialOfTlv returns a DER INTEGER (a serial number) in the canonical form
 * of `canonicalSerialNumber`.
 */
export function serialOfTlv(der: Uint8Array, tlv: Tlv): string {
  return serialNumberOfDer(der.subarray(tlv.contentStart, tlv.end));
}

const clientAuth = "1.3.6.1.5.5.7.3.2";
const anyExtendedKeyUsage = "2.5.29.37.0";

/**
 * allowsClientAuth tells whether extended key usage OIDs (as Node's
 * `X509Certificate.keyUsage` lists them; undefined when the certificate has
 * no such extension) allow TLS client authentication: no extension at all
 * (RFC 5280: any usage), `clientAuth`, or `anyExtendedKeyUsage`.
 */
export function allowsClientAuth(extendedKeyUsage: readonly string[] | undefined): boolean {
  return (
    extendedKeyUsage === undefined ||
    extendedKeyUsage.includes(clientAuth) ||
    extendedKeyUsage.includes(anyExtendedKeyUsage)
  );
}

/**
 * extendedKeyUsageOf returns the extended key usage OIDs of a certificate,
 * or undefined when it has no such extension. Node 23.5 renamed `keyUsage`
 * (which lists extended key usages) to `extKeyUsage`, keeping the old name
 * as a deprecated alias.
 */
export function extendedKeyUsageOf(certificate: Certificate): readonly string[] | undefined {
  const x = certificate.x509 as { extKeyUsage?: string[]; keyUsage?: string[] };
  return "extKeyUsage" in x ? x.extKeyUsage : x.keyUsage;
}
