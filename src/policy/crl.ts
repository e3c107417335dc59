import { verify as verifySignature, type X509Certificate } from "node:crypto";
import { readExtensionList, serialOfTlv } from "./certificate-extensions.js";
import { childrenOf, decodeOid, decodeTime, readTlv, type Tlv } from "../core/der.js";
import { readNameAt } from "./certificate-names.js";
import type { DistinguishedName } from "./distinguished-name.js";

/**
 * ParsedCrl is one certificate revocation list, read once when it is loaded:
 * revoked serials sit in a `Set`, so checking a certificate is one look-up
 * however long the list.
 */
export interface ParsedCrl {
  /** Where it came from (a file path, or `crls[i]`), for messages. */
  readonly source: string;
  /** The issuer name (ASN.1 order). */
  readonly issuer: DistinguishedName;
  readonly thisUpdate: Date;
  /** When the next CRL is due; undefined if the CRL does not say. */
  readonly nextUpdate: Date | undefined;
  /** Revoked serial numbers, in the form of `canonicalSerialNumber`. */
  readonly revoked: ReadonlySet<string>;
  /** Whether an issuing distribution point limits it to end-entity certificates. */
  readonly onlyEndEntities: boolean;
  /** Whether an issuing distribution point limits it to CA certificates. */
  readonly onlyCAs: boolean;
  /**
   * Why certgate cannot use this CRL (a delta CRL, an indirect CRL, an
   * unknown critical extension), or undefined when it can.
   */
  readonly unsupported: string | undefined;
  /** The DER of tbsCertList, the signed part. */
  readonly tbs: Uint8Array;
  /** The signature algorithm OID. */
  readonly signatureAlgorithm: string;
  readonly signature: Uint8Array;
}

const deltaCrlIndicator = "2.5.29.27";
const issuingDistributionPoint = "2.5.29.28";
const understood = new Set([
  "2.5.29.20", // cRLNumber
  "2.5.29.35", // authorityKeyIdentifier
  "2.5.29.46", // freshestCRL (a pointer to delta CRLs; the base stays usable)
  "1.3.6.1.5.5.7.1.1", // authorityInfoAccess
  issuingDistributionPoint,
]);

/**
 * parseCrl reads a DER CRL. It throws a `RangeError` on a malformed
 * encoding; a well-formed CRL that certgate cannot use comes back with
 * `unsupported` set.
 */
export function parseCrl(der: Uint8Array, source: string): ParsedCrl {
  const list = readTlv(der, 0);
  if (list.end !== der.length) throw new RangeError("der: trailing bytes after the CRL");
  const [tbs, algorithm, signature] = childrenOf(der, list);
  if (tbs === undefined || algorithm === undefined || signature === undefined || signature.tag !== 0x03) {
    throw new RangeError("der: not a CRL");
  }
  const fields = childrenOf(der, tbs);
  let i = fields[0]?.tag === 0x02 ? 1 : 0; // version is optional
  i++; // inner signature algorithm
  const issuerTlv = fields[i++];
  const thisUpdateTlv = fields[i++];
  if (issuerTlv === undefined || thisUpdateTlv === undefined) throw new RangeError("der: short CRL");
  let nextUpdate: Date | undefined;
  if (fields[i] !== undefined && (fields[i]?.tag === 0x17 || fields[i]?.tag === 0x18)) {
    nextUpdate = decodeTime(der, fields[i] as Tlv);
    i++;
  }
  const revoked = new Set<string>();
  let unsupported: string | undefined;
  if (fields[i]?.tag === 0x30) {
    for (const entry of childrenOf(der, fields[i] as Tlv)) {
      const [serial, , extensions] = childrenOf(der, entry);
      if (serial === undefined || serial.tag !== 0x02) throw new RangeError("der: bad CRL entry");
      revoked.add(serialOfTlv(der, serial));
      if (extensions !== undefined && unsupported === undefined) {
        // certificateIssuer (indirect CRLs) is critical; so is anything else
        // that would change what an entry means.
        const critical = readExtensionList(der, extensions).find((e) => e.critical);
        if (critical !== undefined) unsupported = `critical CRL entry extension ${critical.oid} is not supported`;
      }
    }
    i++;
  }
  let onlyEndEntities = false;
  let onlyCAs = false;
  const explicit = fields[i];
  if (explicit?.tag === 0xa0) {
    for (const ext of readExtensionList(der, readTlv(der, explicit.contentStart, explicit.end))) {
      if (ext.oid === deltaCrlIndicator) {
        unsupported ??= "delta CRLs are not supported";
      } else if (ext.oid === issuingDistributionPoint) {
        for (const part of childrenOf(der, ext.value)) {
          const on = der[part.contentStart] !== 0;
          if (part.tag === 0x81 && on) onlyEndEntities = true;
          if (part.tag === 0x82 && on) onlyCAs = true;
          if (part.tag === 0x83) unsupported ??= "CRLs partitioned by reason (onlySomeReasons) are not supported";
          if (part.tag === 0x84 && on) unsupported ??= "indirect CRLs are not supported";
          if (part.tag === 0x85 && on) unsupported ??= "attribute certificate CRLs are not supported";
        }
      } else if (ext.critical && !understood.has(ext.oid)) {
        unsupported ??= `critical CRL extension ${ext.oid} is not supported`;
      }
    }
  }
  return {
    source,
    issuer: readNameAt(der, issuerTlv),
    thisUpdate: decodeTime(der, thisUpdateTlv),
    nextUpdate,
    revoked,
    onlyEndEntities,
    onlyCAs,
    unsupported,
    tbs: der.subarray(tbs.start, tbs.end),
    signatureAlgorithm: decodeOid(der, childrenOf(der, algorithm)[0] ?? algorithm),
    // A BIT STRING: the first contents byte counts unused bits (always 0 here).
    signature: der.subarray(signature.contentStart + 1, signature.end),
  };
}

// Signature algorithms by OID: the hash to give crypto.verify (null for
// EdDSA). SHA-1 is left out on purpose: such a CRL does not verify.
const hashes: Record<string, string | null> = {
  "1.2.840.113549.1.1.11": "sha256",
  "1.2.840.113549.1.1.12": "sha384",
  "1.2.840.113549.1.1.13": "sha512",
  "1.2.840.10045.4.3.2": "sha256",
  "1.2.840.10045.4.3.3": "sha384",
  "1.2.840.10045.4.3.4": "sha512",
  "1.3.101.112": null,
  "1.3.101.113": null,
};

/**
 * CrlSignatureCheck is the outcome of checking a CRL's signature.
 */
export type CrlSignatureCheck = { readonly kind: "valid" } | { readonly kind: "invalid"; readonly why: string };

/**
 * verifyCrlSignature checks that `issuer` signed the CRL: RSA (PKCS #1
 * v1.5), ECDSA and EdDSA with SHA-2. Other algorithms (SHA-1, RSA-PSS) are
 * reported as invalid, naming the algorithm.
 */
export function verifyCrlSignature(crl: ParsedCrl, issuer: X509Certificate): CrlSignatureCheck {
  return verifySignedData(crl.signatureAlgorithm, crl.tbs, crl.signature, issuer);
}

/**
 * verifySignedData checks a signature over `tbs` made with the key of
 * `signer`, for the signed structures certgate reads (CRLs, OCSP responses):
 * RSA (PKCS #1 v1.5), ECDSA and EdDSA with SHA-2.
 */
export function verifySignedData(
  algorithm: string,
  tbs: Uint8Array,
  signature: Uint8Array,
  signer: X509Certificate,
): CrlSignatureCheck {
  if (!Object.hasOwn(hashes, algorithm)) {
    return { kind: "invalid", why: `unsupported signature algorithm ${algorithm}` };
  }
  try {
    const ok = verifySignature(hashes[algorithm] ?? null, tbs, signer.publicKey, signature);
    return ok ? { kind: "valid" } : { kind: "invalid", why: "bad signature" };
  } catch (error) {
    return { kind: "invalid", why: `signature could not be checked: ${String(error)}` };
  }
}
