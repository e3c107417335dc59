import { childrenOf, decodeTime } from "./der.js";
import { readTbsFields } from "./tbs-fields.js";

/**
 * readValidity reads the validity window of a DER certificate without
 * parsing the rest: about a microsecond, where a full parse costs hundreds.
 * Listings that need only the expiry of many certificates use it, and so
 * does the read of a new connection's client certificate. It throws a
 * `RangeError` on a malformed encoding, or on a time in a form RFC 5280
 * does not allow.
 */
export function readValidity(der: Uint8Array): { notBefore: Date; notAfter: Date } {
  const { validity } = readTbsFields(der, "validity");
  if (validity === undefined || validity.tag !== 0x30) throw new RangeError("der: no validity");
  const [notBefore, notAfter] = childrenOf(der, validity, 2);
  if (notBefore === undefined || notAfter === undefined) throw new RangeError("der: short validity");
  return { notBefore: decodeTime(der, notBefore), notAfter: decodeTime(der, notAfter) };
}
