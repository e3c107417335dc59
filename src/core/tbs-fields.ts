import { childrenOf, readTlv, type Tlv } from "./der.js";

/**
 * TbsFields locates the fields of a DER certificate's `tbsCertificate`
 * (RFC 5280, 4.1): each is the element as `readTlv` reads it, or undefined
 * when the certificate is too short or the walk stopped before it.
 */
export interface TbsFields {
  /** The tbsCertificate element itself. */
  readonly tbs: Tlv;
  /** `[0] EXPLICIT version`, absent in a v1 certificate. */
  readonly version: Tlv | undefined;
  readonly serialNumber: Tlv | undefined;
  /** The signature AlgorithmIdentifier inside tbsCertificate. */
  readonly signature: Tlv | undefined;
  readonly issuer: Tlv | undefined;
  readonly validity: Tlv | undefined;
  readonly subject: Tlv | undefined;
  readonly subjectPublicKeyInfo: Tlv | undefined;
  /**
   * The `SEQUENCE OF Extension` inside `[3] EXPLICIT extensions`, to read
   * with `readExtensionList`; undefined when the certificate has none or the
   * walk stopped before it.
   */
  readonly extensions: Tlv | undefined;
}

/**
 * TbsReach is the last field `readTbsFields` needs: a walk that stops at the
 * validity window reads five elements whatever follows them (hostile input
 * with thousands of fields costs nothing more).
 */
export type TbsReach = "validity" | "subject" | "extensions";

const fieldsThrough: Record<TbsReach, number> = { validity: 5, subject: 6, extensions: Infinity };

/**
 * readTbsFields walks the fields of a DER certificate's tbsCertificate once,
 * through `reach` (by default, every field through the extensions), with
 * certgate's DER reader: certificate readers that need a field or two take
 * them from here rather than walking the structure themselves. It throws a
 * `RangeError` on a malformed encoding of the fields it reads.
 */
export function readTbsFields(der: Uint8Array, reach: TbsReach = "extensions"): TbsFields {
  const certificate = readTlv(der, 0);
  const tbs = childrenOf(der, certificate, 1)[0];
  if (tbs === undefined) throw new RangeError("der: empty certificate");
  const fields = childrenOf(der, tbs, fieldsThrough[reach]);
  const version = fields[0]?.tag === 0xa0 ? fields[0] : undefined;
  const first = version === undefined ? 0 : 1;
  let extensions: Tlv | undefined;
  if (reach === "extensions") {
    const explicit = fields.find((f) => f.tag === 0xa3);
    if (explicit !== undefined) extensions = readTlv(der, explicit.contentStart, explicit.end);
  }
  return {
    tbs,
    version,
    serialNumber: fields[first],
    signature: fields[first + 1],
    issuer: fields[first + 2],
    validity: fields[first + 3],
    subject: fields[first + 4],
    subjectPublicKeyInfo: fields[first + 5],
    extensions,
  };
}
