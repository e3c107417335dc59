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
