import { childrenOf, decodeTime, readTlv } from "./der.js";

/**
 * readValidity reads the validity window of a DER certificate without
 * parsing the rest: about a microsecond, where a full parse costs hundreds.
 * Listings that need only the expiry of many certificates use it, and so
 * does the read of a new connection's client certificate. It throws a
 * `RangeError` on a malformed encoding, or on a time in a form RFC 5280
 * does not allow.
 */
export function readValidity(der: Uint8Array): { notBefore: Date; notAfter: Date } {
  const certificate = readTlv(der, 0);
  const tbs = childrenOf(der, certificate, 1)[0];
  if (tbs === undefined) throw new RangeError("der: empty certificate");
  // [0] version (absent in v1), serialNumber, signature, issuer, validity.
  const fields = childrenOf(der, tbs, 5);
  const validity = fields[fields[0]?.tag === 0xa0 ? 4 : 3];
  if (validity === undefined || validity.tag !== 0x30) throw new RangeError("der: no validity");
  const [notBefore, notAfter] = childrenOf(der, validity, 2);
  if (notBefore === undefined || notAfter === undefined) throw new RangeError("der: short validity");
  return { notBefore: decodeTime(der, notBefore), notAfter: decodeTime(der, notAfter) };
}
