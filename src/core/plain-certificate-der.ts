import { childrenOf, decodeTime, readTlv, type Tlv } from "./der.js";

const BOOLEAN = 0x01;
const INTEGER = 0x02;
const BIT_STRING = 0x03;
const OCTET_STRING = 0x04;
const NULL = 0x05;
const OID = 0x06;
const UTF8_STRING = 0x0c;
const PRINTABLE_STRING = 0x13;
const IA5_STRING = 0x16;
const SEQUENCE = 0x30;
const SET = 0x31;

// Deeper nesting than any certificate has is left to the full parser.
const maxDepth = 32;

/**
 * isPlainCertificateDer tells, in a few microseconds, whether `der` is
 * exactly one X.509 certificate in DER (every length in its shortest form,
 * nothing after it) of the plain shape that OpenSSL parses into these very
 * bytes: the fields of RFC 5280 in order, object identifiers well formed,
 * names of ASCII or UTF-8 text, BIT STRINGs without unused bits, extensions
 * as OID, critical flag and OCTET STRING. A bulk upload takes such bytes
 * without the full parse (`parseCertificate`, over 100 µs). False says
 * only "not sure": the full parser decides, and takes some of them (a BER
 * boolean, an empty name) that this check leaves to it.
 */
export function isPlainCertificateDer(der: Uint8Array): boolean {
  try {
    const outer = readTlv(der, 0);
    if (outer.tag !== SEQUENCE || outer.end !== der.length || !isDer(der, outer, 0)) return false;
    const [tbs, algorithm, signature, ...rest] = childrenOf(der, outer);
    return (
      rest.length === 0 &&
      tbs?.tag === SEQUENCE &&
      isTbsCertificate(der, tbs) &&
      isAlgorithm(der, algorithm) &&
      isBitString(der, signature, BIT_STRING)
    );
  } catch {
    return false;
  }
}

// Whether every element inside `tlv`, at any depth, has a definite length in
// its shortest form (readTlv refuses the indefinite form and high tags).
function isDer(der: Uint8Array, tlv: Tlv, depth: number): boolean {
  if (!hasShortestLength(der, tlv)) return false;
  if ((tlv.tag & 0x20) === 0) return true;
  if (depth > maxDepth) return false;
  for (let at = tlv.contentStart; at < tlv.end; ) {
    const child = readTlv(der, at, tlv.end);
    if (!isDer(der, child, depth + 1)) return false;
    at = child.end;
  }
  return true;
}

function hasShortestLength(der: Uint8Array, tlv: Tlv): boolean {
  const first = der[tlv.start + 1] ?? 0;
  if ((first & 0x80) === 0) return true;
  return tlv.end - tlv.contentStart >= 0x80 && der[tlv.start + 2] !== 0;
}

// TBSCertificate: [0] version, serialNumber, signature, issuer, validity,
// subject, subjectPublicKeyInfo, [1] issuerUniqueID, [2] subjectUniqueID,
// [3] extensions; the optional ones in that order.
function isTbsCertificate(der: Uint8Array, tbs: Tlv): boolean {
  const fields = childrenOf(der, tbs);
  let at = 0;
  const version = fields[0];
  if (version?.tag === 0xa0) {
    // v1 is the DEFAULT, which DER leaves out.
    const [value, ...more] = childrenOf(der, version);
    const number = value === undefined ? undefined : der[value.contentStart];
    if (more.length > 0 || value?.tag !== INTEGER || value.end - value.contentStart !== 1) return false;
    if (number !== 1 && number !== 2) return false;
    at = 1;
  }
  const [serial, signature, issuer, validity, subject, publicKey, ...optional] = fields.slice(at);
  if (!isInteger(der, serial) || !isAlgorithm(der, signature) || !isName(der, issuer)) return false;
  if (!isValidity(der, validity) || !isName(der, subject) || !isPublicKey(der, publicKey)) return false;
  let last = 0;
  for (const field of optional) {
    const order = field.tag === 0x81 ? 1 : field.tag === 0x82 ? 2 : field.tag === 0xa3 ? 3 : 0;
    if (order <= last) return false;
    last = order;
    if (order === 3 ? !isExtensions(der, field) : !isBitString(der, field, field.tag)) return false;
  }
  return true;
}

function isInteger(der: Uint8Array, tlv: Tlv | undefined): boolean {
  if (tlv?.tag !== INTEGER || tlv.end === tlv.contentStart) return false;
  if (tlv.end - tlv.contentStart === 1) return true;
  const first = der[tlv.contentStart] ?? 0;
  const second = der[tlv.contentStart + 1] ?? 0;
  return !((first === 0x00 && second < 0x80) || (first === 0xff && second >= 0x80));
}

function isOid(der: Uint8Array, tlv: Tlv | undefined): boolean {
  if (tlv?.tag !== OID || tlv.end === tlv.contentStart || ((der[tlv.end - 1] ?? 0) & 0x80) !== 0) return false;
  // Each arc starts with a non-zero septet.
  for (let i = tlv.contentStart; i < tlv.end; i++) {
    const startsArc = i === tlv.contentStart || ((der[i - 1] ?? 0) & 0x80) === 0;
    if (startsArc && der[i] === 0x80) return false;
  }
  return true;
}

// AlgorithmIdentifier: an OID and parameters that are absent, NULL, an OID
// (a named curve) or a SEQUENCE.
function isAlgorithm(der: Uint8Array, tlv: Tlv | undefined): boolean {
  if (tlv?.tag !== SEQUENCE) return false;
  const [oid, parameters, ...rest] = childrenOf(der, tlv);
  if (rest.length > 0 || !isOid(der, oid)) return false;
  if (parameters === undefined || parameters.tag === SEQUENCE) return true;
  if (parameters.tag === NULL) return parameters.end === parameters.contentStart;
  return isOid(der, parameters);
}

function isBitString(der: Uint8Array, tlv: Tlv | undefined, tag: number): boolean {
  return tlv?.tag === tag && tlv.end > tlv.contentStart && der[tlv.contentStart] === 0;
}

function isPublicKey(der: Uint8Array, tlv: Tlv | undefined): boolean {
  if (tlv?.tag !== SEQUENCE) return false;
  const [algorithm, key, ...rest] = childrenOf(der, tlv);
  return rest.length === 0 && isAlgorithm(der, algorithm) && isBitString(der, key, BIT_STRING);
}

function isValidity(der: Uint8Array, tlv: Tlv | undefined): boolean {
  if (tlv?.tag !== SEQUENCE) return false;
  const [notBefore, notAfter, ...rest] = childrenOf(der, tlv);
  if (rest.length > 0 || notBefore === undefined || notAfter === undefined) return false;
  decodeTime(der, notBefore);
  decodeTime(der, notAfter);
  return true;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

// Name: SEQUENCE OF non-empty SET OF { OID, text }, the text ASCII
// (PrintableString, IA5String) or UTF-8: the strings OpenSSL reads back
// whatever their contents; other string types are left to it.
function isName(der: Uint8Array, tlv: Tlv | undefined): boolean {
  if (tlv?.tag !== SEQUENCE) return false;
  for (const rdn of childrenOf(der, tlv)) {
    const attributes = rdn.tag === SET ? childrenOf(der, rdn) : [];
    if (attributes.length === 0) return false;
    for (const attribute of attributes) {
      if (attribute.tag !== SEQUENCE) return false;
      const [type, value, ...rest] = childrenOf(der, attribute);
      if (rest.length > 0 || !isOid(der, type) || value === undefined || !isText(der, value)) return false;
    }
  }
  return true;
}

function isText(der: Uint8Array, tlv: Tlv): boolean {
  if (tlv.tag === PRINTABLE_STRING || tlv.tag === IA5_STRING || tlv.tag === UTF8_STRING) {
    let ascii = true;
    for (let i = tlv.contentStart; i < tlv.end && ascii; i++) ascii = (der[i] ?? 0) < 0x80;
    if (ascii) return true;
    if (tlv.tag !== UTF8_STRING) return false;
    utf8.decode(der.subarray(tlv.contentStart, tlv.end));
    return true;
  }
  return false;
}

// [3] EXPLICIT SEQUENCE SIZE (1..MAX) OF Extension { OID, critical BOOLEAN
// DEFAULT FALSE (so TRUE when given), OCTET STRING }.
function isExtensions(der: Uint8Array, tlv: Tlv): boolean {
  const [list, ...rest] = childrenOf(der, tlv);
  if (rest.length > 0 || list?.tag !== SEQUENCE) return false;
  const extensions = childrenOf(der, list);
  if (extensions.length === 0) return false;
  return extensions.every((extension) => {
    if (extension.tag !== SEQUENCE) return false;
    const [oid, second, third, ...more] = childrenOf(der, extension);
    if (more.length > 0 || !isOid(der, oid)) return false;
    if (third === undefined) return second?.tag === OCTET_STRING;
    const isTrue =
      second?.tag === BOOLEAN && second.end - second.contentStart === 1 && der[second.contentStart] === 0xff;
    return isTrue && third.tag === OCTET_STRING;
  });
}
