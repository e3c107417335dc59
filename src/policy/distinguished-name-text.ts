// The text forms of a distinguished name: the ones people write and copy,
// read by parseDistinguishedName, and RFC 4514, written by
// formatDistinguishedName.
import { decodeDirectoryString, readTlv } from "../core/der.js";
import { attributeTypeOf, type DistinguishedName, type NameAttribute } from "./distinguished-name.js";

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
