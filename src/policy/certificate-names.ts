import { childrenOf, decodeDirectoryString, decodeOid, type Tlv } from "../core/der.js";
import { readTbsFields } from "../core/tbs-fields.js";
import type { DistinguishedName } from "./distinguished-name.js";

/**
 * CertificateNames holds the subject and issuer of a certificate, read from
 * its DER encoding (ASN.1 order).
 */
export interface CertificateNames {
  readonly subject: DistinguishedName;
  readonly issuer: DistinguishedName;
}

/**
 * readCertificateNames reads the subject and issuer names from a DER
 * certificate. It throws a `RangeError` on a malformed encoding.
 */
export function readCertificateNames(der: Uint8Array): CertificateNames {
  const { issuer, subject } = readTbsFields(der, "subject");
  if (issuer === undefined || subject === undefined) throw new RangeError("der: short certificate");
  return { subject: readNameAt(der, subject), issuer: readNameAt(der, issuer) };
}

/**
 * readNameAt reads the DER `Name` element `name` of a certificate or CRL.
 */
export function readNameAt(der: Uint8Array, name: Tlv): DistinguishedName {
  return childrenOf(der, name).map((set) =>
    childrenOf(der, set).map((pair) => {
      const [oid, value] = childrenOf(der, pair);
      if (oid === undefined || value === undefined || oid.tag !== 0x06) throw new RangeError("der: bad name attribute");
      return { type: decodeOid(der, oid), value: decodeDirectoryString(der, value) };
    }),
  );
}
