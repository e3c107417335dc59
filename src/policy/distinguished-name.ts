import { decodeDirectoryString, readTlv } from "../core/der.js";

/**
 * NameAttribute is one `type=value` pair of a distinguished name.
 */
export interface NameAttribute {
  /** The attribute type as a dotted OID, such as `2.5.4.3` for CN. */
  readonly type: string;
  /** The value as text (`#` and hex for values that are not strings). */
  readonly value: string;
}

/**
 * DistinguishedName is a name as a list of relative distinguished names
 * (RDNs), each a set of one or more attributes. Names read from a
 * certificate are in ASN.1 order (country first, as OpenSSL prints them);
 * parsed names are in the order they were written.
 */
export type DistinguishedName = readonly (readonly NameAttribute[])[];

// Keyword (lower case) to OID: the RFC 4514 keywords, the ones OpenSSL and
// Windows print (S, E, SERIALNUMBER, OID.x), and the long names.
const keywords: Record<string, string> = {
  cn: "2.5.4.3",
  commonname: "2.5.4.3",
  sn: "2.5.4.4",
  surname: "2.5.4.4",
  serialnumber: "2.5.4.5",
  c: "2.5.4.6",
  countryname: "2.5.4.6",
  l: "2.5.4.7",
  localityname: "2.5.4.7",
  st: "2.5.4.8",
  s: "2.5.4.8",
  stateorprovincename: "2.5.4.8",
  street: "2.5.4.9",
  streetaddress: "2.5.4.9",
  o: "2.5.4.10",
  organizationname: "2.5.4.10",
  ou: "2.5.4.11",
  organizationalunitname: "2.5.4.11",
  t: "2.5.4.12",
  title: "2.5.4.12",
  description: "2.5.4.13",
  postalcode: "2.5.4.17",
  name: "2.5.4.41",
  g: "2.5.4.42",
  gn: "2.5.4.42",
  givenname: "2.5.4.42",
  i: "2.5.4.43",
  initials: "2.5.4.43",
  generationqualifier: "2.5.4.44",
  dnqualifier: "2.5.4.46",
  pseudonym: "2.5.4.65",
  organizationidentifier: "2.5.4.97",
  dc: "0.9.2342.19200300.100.1.25",
  domaincomponent: "0.9.2342.19200300.100.1.25",
  uid: "0.9.2342.19200300.100.1.1",
  userid: "0.9.2342.19200300.100.1.1",
  e: "1.2.840.113549.1.9.1",
  email: "1.2.840.113549.1.9.1",
  emailaddress: "1.2.840.113549.1.9.1",
};

const shortNames: Record<string, string> = {
  "2.5.4.3": "CN",
  "2.5.4.4": "SN",
  "2.5.4.5": "SERIALNUMBER",
  "2.5.4.6": "C",
  "2.5.4.7": "L",
  "2.5.4.8": "ST",
  "2.5.4.9": "STREET",
  "2.5.4.10": "O",
  "2.5.4.11": "OU",
  "2.5.4.12": "T",
  "2.5.4.42": "GN",
  "0.9.2342.19200300.100.1.25": "DC",
  "0.9.2342.19200300.100.1.1": "UID",
  "1.2.840.113549.1.9.1": "E",
};

// Attribute types whose X.520 / RFC 4519 / PKCS #9 equality rule ignores
// case (caseIgnoreMatch, caseIgnoreIA5Match). Every other type compares
// exactly (after space folding), which fails closed.
const caseIgnore = new Set([
  "2.5.4.3",
  "2.5.4.4",
  "2.5.4.5",
  "2.5.4.6",
  "2.5.4.7",
  "2.5.4.8",
  "2.5.4.9",
  "2.5.4.10",
  "2.5.4.11",
  "2.5.4.12",
  "2.5.4.13",
  "2.5.4.17",
  "2.5.4.41",
  "2.5.4.42",
  "2.5.4.43",
  "2.5.4.44",
  "2.5.4.46",
  "2.5.4.65",
  "2.5.4.97",
  "0.9.2342.19200300.100.1.25",
  "0.9.2342.19200300.100.1.1",
  "1.2.840.113549.1.9.1",
]);

/**
 * attributeTypeOf returns the OID of an attribute keyword (`CN`, `o`,
 * `emailAddress`, `OID.2.5.4.3`, `2.5.4.3`), or undefined if unknown.
 */
export function attributeTypeOf(keyword: string): string | undefined {
  const k = keyword.trim();
  const oid = /^(?:oid\.)?([0-2](?:\.\d+)+)$/i.exec(k);
  if (oid !== null) {
    return oid[1];
  }
  return Object.hasOwn(keywords, k.toLowerCase()) ? keywords[k.toLowerCase()] : undefined;
}

/**
 * attributeValuesEqual compares two values of one attribute type as X.500
 * says: Unicode compatibility forms and runs of spaces fold, leading and
 * trailing spaces drop, and case is ignored for the case-insensitive types.
 */
export function attributeValuesEqual(type: string, a: string, b: string): boolean {
  return prepareValue(type, a) === prepareValue(type, b);
}

function prepareValue(type: string, value: string): string {
  const folded = value.normalize("NFKC").replace(/\s+/g, " ").trim();
  return caseIgnore.has(type) ? folded.toLowerCase() : folded;
}

function rdnEqual(a: readonly NameAttribute[], b: readonly NameAttribute[]): boolean {
  if (a.length !== b.length) {
    return false;
  }
  // Multi-valued RDNs are sets: each attribute pairs with a distinct one.
  const used = new Array<boolean>(b.length).fill(false);
  for (const x of a) {
    const i = b.findIndex((y, j) => !used[j] && x.type === y.type && attributeValuesEqual(x.type, x.value, y.value));
    if (i < 0) {
      return false;
    }
    used[i] = true;
  }
  return true;
}

/**
 * distinguishedNamesEqual tells whether two names are the same name: RDN by
 * RDN, either in the same order or one reversed (RFC 4514 writes the most
 * specific RDN first, OpenSSL and the ASN.1 encoding put it last).
 */
export function distinguishedNamesEqual(a: DistinguishedName, b: DistinguishedName): boolean {
  const n = a.length;
  if (n !== b.length) {
    return false;
  }
  let forward = true;
  for (let i = 0; i < n && forward; i++) {
    forward = rdnEqual(a[i] ?? [], b[i] ?? []);
  }
  if (forward) {
    return true;
  }
  for (let i = 0; i < n; i++) {
    if (!rdnEqual(a[i] ?? [], b[n - 1 - i] ?? [])) {
      return false;
    }
  }
  return true;
}

const hexPair = /^[0-9a-fA-F]{2}$/;

/**
 * parseDistinguishedName reads a DN as people write and copy it: RFC 4514
 * (`CN=alice,O=Contoso\, Inc.,C=US`), the Windows and .NET form with quotes
 * and spaces (`CN=alice, O="Contoso, Inc.", C=US`), OpenSSL's display form
 * (`C = US, O = "Contoso, Inc.", CN = alice`) and its old slash form
 * (`/C=US/O=Contoso, Inc./CN=alice`), and Node's one-RDN-per-line form.
 * Multi-valued RDNs use `+`. It throws a `TypeError` naming the problem for
 * anything it cannot read, including unknown attribute keywords.
 */
export function parseDistinguishedName(text: string): DistinguishedName {
  if (typeof text !== "string") {
    throw new TypeError(`invalid distinguished name ${String(text)}: not a string`);
  }
  const fail = (why: string): never => {
    throw new TypeError(`invalid distinguished name ${JSON.stringify(text)}: ${why}`);
  };
  const s = trimUnescaped(text);
  const slash = s.startsWith("/");
  const isRdnSeparator = (c: string) => (slash ? c === "/" : c === "," || c === ";" || c === "\n");
  const rdns: NameAttribute[][] = [];
  let rdn: NameAttribute[] = [];
  let i = slash ? 1 : 0;
  if (s.length === 0) {
    return rdns;
  }
  const skipSpaces = () => {
    while (i < s.length && (s[i] === " " || s[i] === "\t" || s[i] === "\r")) i++;
  };
  for (;;) {
    skipSpaces();
    const eq = s.indexOf("=", i);
    if (eq < 0) fail("expected type=value");
    const keyword = s.slice(i, eq).trim();
    if (keyword.length === 0) fail("an attribute has no type");
    if (/[,;+\n/"]/.test(keyword)) {
      fail(`expected type=value at ${JSON.stringify(keyword)}; escape a comma in a value as \\, or quote the value`);
    }
    const type = attributeTypeOf(keyword) ?? fail(`unknown attribute type ${JSON.stringify(keyword)}; use its OID`);
    i = eq + 1;
    skipSpaces();
    let value = "";
    if (s[i] === '"') {
      i++;
      let closed = false;
      while (i < s.length) {
        const c = s[i] ?? "";
        if (c === "\\" && i + 1 < s.length) {
          value += s[i + 1];
          i += 2;
        } else if (c === '"' && s[i + 1] === '"') {
          value += '"'; // .NET doubles a quote inside quotes
          i += 2;
        } else if (c === '"') {
          closed = true;
          i++;
          break;
        } else {
          value += c;
          i++;
        }
      }
      if (!closed) fail("unterminated quote");
      skipSpaces();
    } else if (s[i] === "#") {
      const match = /^#([0-9a-fA-F]*)/.exec(s.slice(i)) ?? fail("bad hex value");
      value = decodeHexValue(match[1] ?? "") ?? fail("hex value is not a DER string");
      i += match[0].length;
      skipSpaces();
    } else {
      let significant = 0; // length up to the last character that must be kept
      let bytes: number[] = [];
      const flush = () => {
        if (bytes.length > 0) {
          value += Buffer.from(bytes).toString("utf8");
          significant = value.length;
          bytes = [];
        }
      };
      while (i < s.length) {
        const c = s[i] ?? "";
        if (c === "\\") {
          const pair = s.slice(i + 1, i + 3);
          if (hexPair.test(pair)) {
            bytes.push(Number.parseInt(pair, 16));
            i += 3;
            continue;
          }
          flush();
          if (i + 1 >= s.length) fail("dangling backslash");
          value += s[i + 1];
          significant = value.length;
          i += 2;
          continue;
        }
        if (c === "+" || isRdnSeparator(c)) break;
        flush();
        value += c;
        if (c !== " " && c !== "\t" && c !== "\r") significant = value.length;
        i++;
      }
      flush();
      value = value.slice(0, significant);
    }
    rdn.push({ type, value });
    if (i >= s.length) {
      rdns.push(rdn);
      return rdns;
    }
    const sep = s[i] ?? "";
    if (sep === "+") {
      i++;
      continue;
    }
    if (!isRdnSeparator(sep)) fail(`unexpected ${JSON.stringify(sep)} at ${i}`);
    rdns.push(rdn);
    rdn = [];
    i++;
    skipSpaces();
    if (i >= s.length) fail("trailing separator");
  }
}

// Trims like String.trim, but keeps a trailing space that a backslash
// escapes (`CN=\ ` is a one-space name).
function trimUnescaped(text: string): string {
  const start = text.trimStart();
  const end = start.trimEnd();
  if (end.length === start.length) return end;
  const backslashes = /\\+$/.exec(end)?.[0].length ?? 0;
  return backslashes % 2 === 1 ? end + start[end.length] : end;
}

function decodeHexValue(hex: string): string | undefined {
  if (hex.length === 0 || hex.length % 2 !== 0) {
    return undefined;
  }
  const bytes = new Uint8Array(Buffer.from(hex, "hex"));
  try {
    const tlv = readTlv(bytes, 0);
    if (tlv.end !== bytes.length) {
      return undefined;
    }
    return decodeDirectoryString(bytes, tlv);
  } catch {
    return undefined;
  }
}

/**
 * formatDistinguishedName writes a name in RFC 4514 form: most specific RDN
 * first, short keywords where there is one, special characters escaped.
 */
export function formatDistinguishedName(name: DistinguishedName): string {
  return [...name]
    .reverse()
    .map((rdn) => rdn.map((a) => `${shortNames[a.type] ?? a.type}=${escapeValue(a.value)}`).join("+"))
    .join(",");
}

function escapeValue(value: string): string {
  // The hex form of a value that is not a string; a string that merely
  // starts with # is escaped like any other.
  if (/^#(?:[0-9a-f]{2})+$/.test(value) && decodeHexValue(value.slice(1)) !== undefined) {
    return value;
  }
  let out = value
    .replace(/[\\,+"<>;=]/g, "\\$&")
    .replace(/[\u0000-\u001f]/g, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
  // A value of one space gets one escape, not two.
  if (out.length > 1 && out.endsWith(" ")) out = `${out.slice(0, -1)}\\ `;
  if (out.startsWith("#") || out.startsWith(" ")) out = `\\${out}`;
  return out;
}
