import { childrenOf, decodeOid, decodeTime, readTlv, type Tlv } from "../core/der.js";
import { serialNumberOfDer } from "../core/serial-number.js";
import { readTbsFields } from "../core/tbs-fields.js";

/**
 * ListedFields are the fields of a certificate that the service's
 * `Certificate` message shows, as Node's `X509Certificate` gives them.
 */
export interface ListedFields {
  readonly subject: string;
  readonly issuer: string;
  readonly serialNumber: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly isCA: boolean;
}

// OpenSSL's short names of the attribute types it prints (XN_FLAG_FN_SN).
const shortNames: Readonly<Record<string, string>> = {
  "2.5.4.3": "CN",
  "2.5.4.4": "SN",
  "2.5.4.5": "serialNumber",
  "2.5.4.6": "C",
  "2.5.4.7": "L",
  "2.5.4.8": "ST",
  "2.5.4.9": "street",
  "2.5.4.10": "O",
  "2.5.4.11": "OU",
  "2.5.4.12": "title",
  "2.5.4.17": "postalCode",
  "2.5.4.42": "GN",
  "1.2.840.113549.1.9.1": "emailAddress",
  "0.9.2342.19200300.100.1.1": "UID",
  "0.9.2342.19200300.100.1.25": "DC",
};

const printableString = 0x13;
const utf8String = 0x0c;
const ia5String = 0x16;
const boolean = 0x01;
const basicConstraints = "2.5.29.19";
const keyUsage = "2.5.29.15";
const keyCertSign = 0x04;

/**
 * readListedFields reads the listed fields of a DER certificate with
 * certgate's DER reader, without Node's `X509Certificate`: OpenSSL's parsed
 * form is native memory that the garbage collector does not see, so a
 * listing of 100,000 certificates would grow the process by hundreds of
 * MiB before any of it is freed. It covers the common shape (v3, not a CA,
 * one attribute per RDN of the usual types, plain ASCII values that OpenSSL
 * prints unescaped) and returns undefined for anything else, which the
 * caller then reads with Node.
 */
export function readListedFields(der: Uint8Array): ListedFields | undefined {
  try {
    const fields = readTbsFields(der);
    // v1 and v2: OpenSSL's rules for their CA flag differ.
    if (fields.version === undefined) return undefined;
    const { serialNumber: serial, issuer: issuerName, validity, subject: subjectName } = fields;
    if (serial?.tag !== 0x02 || issuerName === undefined || validity === undefined || subjectName === undefined) {
      return undefined;
    }
    const issuer = nameOf(der, issuerName);
    const subject = nameOf(der, subjectName);
    const [from, to] = childrenOf(der, validity, 3);
    if (issuer === undefined || subject === undefined || from === undefined || to === undefined) return undefined;
    const isCA = caOf(der, fields.extensions);
    if (isCA === undefined) return undefined;
    return {
      subject,
      issuer,
      serialNumber: serialNumberOfDer(der.subarray(serial.contentStart, serial.end)),
      notBefore: decodeTime(der, from),
      notAfter: decodeTime(der, to),
      isCA,
    };
  } catch {
    return undefined;
  }
}

// Node's one-attribute-per-line form, or undefined when OpenSSL would escape
// or convert something.
function nameOf(der: Uint8Array, name: Tlv): string | undefined {
  if (name.tag !== 0x30) return undefined;
  const lines: string[] = [];
  for (const rdn of childrenOf(der, name)) {
    const attributes = childrenOf(der, rdn, 2);
    const attribute = attributes[0];
    if (rdn.tag !== 0x31 || attributes.length !== 1 || attribute?.tag !== 0x30) return undefined;
    const [type, value] = childrenOf(der, attribute, 3);
    if (type?.tag !== 0x06 || value === undefined) return undefined;
    const short = shortNames[decodeOid(der, type)];
    if (short === undefined) return undefined;
    if (value.tag !== printableString && value.tag !== utf8String && value.tag !== ia5String) return undefined;
    const text = plainAscii(der, value);
    if (text === undefined) return undefined;
    lines.push(`${short}=${text}`);
  }
  return lines.length === 0 ? undefined : lines.join("\n");
}

// Printable ASCII that RFC 2253 escaping leaves as it is.
function plainAscii(der: Uint8Array, value: Tlv): string | undefined {
  const length = value.end - value.contentStart;
  if (length === 0) return undefined;
  let text = "";
  for (let i = value.contentStart; i < value.end; i++) {
    const c = der[i]!;
    if (c < 0x20 || c > 0x7e || ',+"\\<>;#='.includes(String.fromCharCode(c))) return undefined;
    text += String.fromCharCode(c);
  }
  return text.startsWith(" ") || text.endsWith(" ") ? undefined : text;
}

// Node's `ca` is OpenSSL's X509_check_ca() === 1: a basicConstraints
// extension with cA true, no keyUsage that lacks keyCertSign, and no
// extension OpenSSL finds invalid. Only "not a CA" is answered here (what
// API client certificates are); a certificate that may be a CA, or anything
// unusual (a repeated extension, a broken value), is left to Node.
function caOf(der: Uint8Array, list: Tlv | undefined): boolean | undefined {
  if (list === undefined) return false;
  if (list.tag !== 0x30) return undefined;
  const seen = new Set<string>();
  let ca = false;
  let signs: boolean | undefined;
  for (const extension of childrenOf(der, list)) {
    const parts = childrenOf(der, extension, 4);
    const oid = parts[0];
    const value = parts[parts.length - 1];
    if (oid?.tag !== 0x06 || value?.tag !== 0x04) return undefined;
    const id = decodeOid(der, oid);
    if (seen.has(id)) return undefined;
    seen.add(id);
    if (id === basicConstraints) {
      const constraints = readTlv(der, value.contentStart, value.end);
      if (constraints.tag !== 0x30) return undefined;
      const first = childrenOf(der, constraints, 1)[0];
      ca = first?.tag === boolean && first.end - first.contentStart === 1 && der[first.contentStart] !== 0;
    } else if (id === keyUsage) {
      const bits = readTlv(der, value.contentStart, value.end);
      if (bits.tag !== 0x03 || bits.end - bits.contentStart < 1) return undefined;
      signs = bits.end - bits.contentStart >= 2 && (der[bits.contentStart + 1]! & keyCertSign) !== 0;
    }
  }
  return ca && signs !== false ? undefined : false;
}
