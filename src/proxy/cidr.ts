import { isIPv4, isIPv6 } from "node:net";

/**
 * AddressRange is one parsed CIDR range. IPv4 ranges are kept as the
 * IPv4-mapped IPv6 range (`::ffff:a.b.c.d/96+n`), so that one comparison
 * covers `127.0.0.1` and `::ffff:127.0.0.1` alike: a dual-stack server sees
 * IPv4 peers in the second form.
 */
export interface AddressRange {
  /** The range as it was written. */
  readonly text: string;
  /** The network address, 16 bytes. */
  readonly network: Uint8Array;
  /** The prefix length in the 128-bit space (IPv4 prefixes plus 96). */
  readonly prefix: number;
}

/**
 * parseIpAddress turns an IPv4 or IPv6 address into 16 bytes, IPv4 as
 * IPv4-mapped IPv6. A zone (`fe80::1%eth0`) is dropped. It returns undefined
 * for anything that is not an address.
 */
export function parseIpAddress(text: string): Uint8Array | undefined {
  if (isIPv4(text)) {
    return mapped(text);
  }
  if (!isIPv6(text)) {
    return undefined;
  }
  const percent = text.indexOf("%");
  return parseIPv6(percent < 0 ? text : text.slice(0, percent));
}

/**
 * parseCidr parses `address/prefix`, or a bare address meaning that one host.
 * It throws a `TypeError` naming the entry for a malformed range, a prefix out
 * of range, host bits set (`10.0.0.1/8`: was `10.0.0.0/8` or `10.0.0.1/32`
 * meant?), a zone, or a prefix of 0 (every address).
 */
export function parseCidr(text: string): AddressRange {
  if (typeof text !== "string") {
    throw new TypeError(`invalid CIDR ${String(text)}: not a string`);
  }
  const slash = text.indexOf("/");
  const address = (slash < 0 ? text : text.slice(0, slash)).trim();
  const prefixText = slash < 0 ? undefined : text.slice(slash + 1).trim();
  const fail = (why: string) => new TypeError(`invalid CIDR ${JSON.stringify(text)}: ${why}`);
  if (address.includes("%")) {
    throw fail("a zone (%) is not allowed in a range");
  }
  const v4 = isIPv4(address);
  if (!v4 && !isIPv6(address)) {
    throw fail("not an IPv4 or IPv6 address");
  }
  const bits = v4 ? 32 : 128;
  let prefix = bits;
  if (prefixText !== undefined) {
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > bits) {
      throw fail(`prefix length must be 0 to ${bits}`);
    }
    prefix = Number(prefixText);
  }
  if (prefix === 0) {
    throw fail(
      "it matches every address, so any client could forge forwarding headers; name the proxies' range, or set trustedProxies.anyAddress if only the proxy can reach this server",
    );
  }
  const network = v4 ? mapped(address) : parseIPv6(address);
  const prefix128 = v4 ? prefix + 96 : prefix;
  if (!hostBitsClear(network, prefix128)) {
    throw fail(`host bits are set; write the network address, or /${bits} for one host`);
  }
  return { text, network, prefix: prefix128 };
}

/**
 * AddressMatcher tells whether a peer address lies in one of its ranges.
 */
export type AddressMatcher = (address: string | undefined) => boolean;

/**
 * createAddressMatcher parses every range up front (see `parseCidr`, which
 * throws on a malformed entry) and returns a matcher. An address that does
 * not parse matches nothing.
 */
export function createAddressMatcher(cidrs: Iterable<string>): AddressMatcher {
  const ranges = [...cidrs].map(parseCidr);
  return (address) => {
    if (address === undefined || ranges.length === 0) {
      return false;
    }
    const bytes = parseIpAddress(address);
    return bytes !== undefined && ranges.some((r) => inRange(bytes, r));
  };
}

/**
 * inRange tells whether a 16-byte address lies in a range.
 */
export function inRange(address: Uint8Array, range: AddressRange): boolean {
  let remaining = range.prefix;
  for (let i = 0; i < 16 && remaining > 0; i++) {
    const mask = remaining >= 8 ? 0xff : (0xff << (8 - remaining)) & 0xff;
    if (((address[i] ?? 0) & mask) !== ((range.network[i] ?? 0) & mask)) {
      return false;
    }
    remaining -= 8;
  }
  return true;
}

function hostBitsClear(network: Uint8Array, prefix: number): boolean {
  for (let bit = prefix; bit < 128; bit++) {
    if ((((network[bit >> 3] ?? 0) >> (7 - (bit & 7))) & 1) !== 0) {
      return false;
    }
  }
  return true;
}

// Callers validated the text with isIPv4.
function mapped(v4: string): Uint8Array {
  const bytes = new Uint8Array(16);
  bytes[10] = 0xff;
  bytes[11] = 0xff;
  v4.split(".").forEach((part, i) => {
    bytes[12 + i] = Number(part);
  });
  return bytes;
}

// Callers validated the text with isIPv6 (and removed any zone).
function parseIPv6(text: string): Uint8Array {
  const bytes = new Uint8Array(16);
  let head = text;
  let tail = "";
  const gap = text.indexOf("::");
  if (gap >= 0) {
    head = text.slice(0, gap);
    tail = text.slice(gap + 2);
  }
  const groups = (part: string): number[] => {
    if (part === "") {
      return [];
    }
    const out: number[] = [];
    for (const group of part.split(":")) {
      if (group.includes(".")) {
        // An embedded IPv4 address fills the last two groups.
        const v4 = group.split(".").map(Number);
        out.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0));
      } else {
        out.push(parseInt(group, 16));
      }
    }
    return out;
  };
  const first = groups(head);
  const last = groups(tail);
  const all = gap >= 0 ? [...first, ...new Array<number>(8 - first.length - last.length).fill(0), ...last] : first;
  all.forEach((group, i) => {
    bytes[2 * i] = group >> 8;
    bytes[2 * i + 1] = group & 0xff;
  });
  return bytes;
}
