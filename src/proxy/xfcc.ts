import type { Certificate } from "../core/certificate.js";
import { decodeUrlEncodedPem } from "./encoded-certificate.js";

/**
 * XfccElement is one element of an Envoy `x-forwarded-client-cert` header:
 * what one proxy said of the peer of its own incoming connection. Keys are
 * case-insensitive; `By`, `URI` and `DNS` may repeat.
 */
export interface XfccElement {
  /** URI SANs of the certificate of the proxy that added the element. */
  readonly by: readonly string[];
  /** SHA-256 of the peer's certificate, hex, as sent. */
  readonly hash: string | undefined;
  /** The peer's certificate, URL-encoded PEM, as sent. */
  readonly cert: string | undefined;
  /** The peer's chain, leaf first, URL-encoded PEM, as sent. */
  readonly chain: string | undefined;
  /** The peer certificate's subject, as sent. */
  readonly subject: string | undefined;
  /** URI SANs of the peer's certificate. */
  readonly uri: readonly string[];
  /** DNS SANs of the peer's certificate. */
  readonly dns: readonly string[];
}

/**
 * ParsedXfcc is the result of `parseXfcc`.
 */
export type ParsedXfcc =
  | { readonly kind: "parsed"; readonly elements: readonly XfccElement[] }
  | { readonly kind: "malformed"; readonly message: string };

const keyToken = /^[A-Za-z][A-Za-z0-9_-]*$/;
const single = new Set(["hash", "cert", "chain", "subject"]);

/**
 * parseXfcc splits an `x-forwarded-client-cert` value into its elements:
 * elements are separated by `,`, `key=value` pairs by `;`, and a value that
 * holds `,`, `;` or `=` is double-quoted, with `\"` for a quote inside.
 * Everything is checked, including elements that will not be used: a
 * malformed header is refused as a whole rather than half-read.
 */
export function parseXfcc(value: string, maxElements: number): ParsedXfcc {
  const elements: XfccElement[] = [];
  let pairs: [string, string][] = [];
  let i = 0;
  const n = value.length;
  const malformed = (message: string): ParsedXfcc => ({ kind: "malformed", message });
  for (;;) {
    // One key=value pair.
    const eq = value.indexOf("=", i);
    const stop = nextSeparator(value, i);
    if (eq < 0 || eq > stop) {
      return malformed(value.slice(i, stop).trim() === "" ? "empty element or pair" : "pair without =");
    }
    const key = value.slice(i, eq).trim();
    if (!keyToken.test(key)) {
      return malformed("bad key");
    }
    i = eq + 1;
    while (i < n && (value[i] === " " || value[i] === "\t")) i++;
    let text: string;
    if (value[i] === '"') {
      let out = "";
      let j = i + 1;
      for (;;) {
        if (j >= n) {
          return malformed("unterminated quote");
        }
        const c = value[j];
        if (c === "\\" && j + 1 < n) {
          out += value[j + 1];
          j += 2;
        } else if (c === '"') {
          break;
        } else {
          out += c;
          j++;
        }
      }
      text = out;
      i = j + 1;
      while (i < n && (value[i] === " " || value[i] === "\t")) i++;
      if (i < n && value[i] !== ";" && value[i] !== ",") {
        return malformed("text after a closing quote");
      }
    } else {
      const end = nextSeparator(value, i);
      text = value.slice(i, end).trim();
      if (text.includes('"')) {
        return malformed("stray quote");
      }
      i = end;
    }
    pairs.push([key.toLowerCase(), text]);
    // i is at a separator or the end.
    if (i >= n || value[i] === ",") {
      const element = toElement(pairs);
      if (typeof element === "string") {
        return malformed(element);
      }
      elements.push(element);
      if (elements.length > maxElements) {
        return malformed(`more than ${maxElements} elements`);
      }
      pairs = [];
    }
    if (i >= n) {
      return { kind: "parsed", elements };
    }
    i++;
  }
}

function nextSeparator(value: string, from: number): number {
  for (let i = from; i < value.length; i++) {
    const c = value[i];
    if (c === ";" || c === ",") {
      return i;
    }
  }
  return value.length;
}

function toElement(pairs: [string, string][]): XfccElement | string {
  const seen = new Set<string>();
  const by: string[] = [];
  const uri: string[] = [];
  const dns: string[] = [];
  const one: Record<string, string> = {};
  for (const [key, text] of pairs) {
    if (single.has(key)) {
      if (seen.has(key)) {
        return `duplicate ${key}`;
      }
      seen.add(key);
      one[key] = text;
    } else if (key === "by") {
      by.push(text);
    } else if (key === "uri") {
      uri.push(text);
    } else if (key === "dns") {
      dns.push(text);
    }
    // Other keys are Envoy's to add; they carry nothing certgate uses.
  }
  return { by, hash: one.hash, cert: one.cert, chain: one.chain, subject: one.subject, uri, dns };
}

/**
 * XfccSelection is which certificate an XFCC header forwards for the client.
 */
export type XfccSelection =
  | { readonly kind: "certificate"; readonly certificate: Certificate; readonly element: XfccElement }
  | {
      readonly kind: "none";
      /**
       * `hash_only`: the client's element has a `Hash` but no `Cert` or
       * `Chain`; `no_cert`: it has neither; `only_proxies`: every element
       * names a trusted proxy.
       */
      readonly why: "hash_only" | "no_cert" | "only_proxies";
    }
  | { readonly kind: "invalid"; readonly message: string };

/**
 * selectXfccCertificate picks the client's certificate out of the parsed
 * elements. The last element was added by the nearest proxy, which is
 * trusted, so it is the truth about that proxy's peer; earlier elements may
 * come from anyone (a client can send its own header to an appending proxy).
 * When the peer it names is itself a trusted proxy (by thumbprint), the walk
 * goes one element further left, and so on: the first element naming a
 * certificate that is not a trusted proxy is the client's.
 *
 * A `Hash` alongside `Cert` must match the certificate's SHA-256. An element
 * with only a `Hash` forwards no certificate (certgate needs the certificate
 * for the validity window and the stores), unless the hash names a trusted
 * proxy, in which case the walk continues.
 */
export function selectXfccCertificate(
  elements: readonly XfccElement[],
  isTrustedProxy: (thumbprints: { sha1?: string; sha256: string }) => boolean,
): XfccSelection {
  for (let k = elements.length - 1; k >= 0; k--) {
    const element = elements[k] as XfccElement;
    const hash = element.hash === undefined ? undefined : element.hash.toUpperCase();
    if (hash !== undefined && !/^[0-9A-F]{64}$/.test(hash)) {
      return { kind: "invalid", message: "Hash is not a SHA-256 hex digest" };
    }
    const encoded = element.cert ?? element.chain;
    if (encoded === undefined) {
      if (hash !== undefined && isTrustedProxy({ sha256: hash })) {
        continue;
      }
      return { kind: "none", why: hash === undefined ? "no_cert" : "hash_only" };
    }
    const decoded = decodeUrlEncodedPem(encoded, element.cert !== undefined);
    if (decoded.kind === "invalid") {
      return { kind: "invalid", message: `${element.cert !== undefined ? "Cert" : "Chain"}: ${decoded.message}` };
    }
    const certificate = decoded.certificate;
    if (hash !== undefined && hash !== certificate.sha256) {
      return { kind: "invalid", message: "Hash does not match Cert" };
    }
    if (element.cert !== undefined && element.chain !== undefined && !chainStartsWith(element.chain, certificate)) {
      return { kind: "invalid", message: "Chain does not start with Cert" };
    }
    if (isTrustedProxy(certificate)) {
      continue;
    }
    return { kind: "certificate", certificate, element };
  }
  return { kind: "none", why: "only_proxies" };
}

function chainStartsWith(chain: string, certificate: Certificate): boolean {
  const decoded = decodeUrlEncodedPem(chain, false);
  return decoded.kind === "certificate" && decoded.certificate.sha256 === certificate.sha256;
}
