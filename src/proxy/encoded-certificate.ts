import { parseCertificate, type Certificate } from "../core/certificate.js";

/**
 * DecodedCertificate is the result of reading one certificate out of a header
 * value.
 */
export type DecodedCertificate =
  | { readonly kind: "certificate"; readonly certificate: Certificate }
  | { readonly kind: "invalid"; readonly message: string };

const base64 = /^[A-Za-z0-9+/]+={0,2}$/;
const certificateBlock = /-----BEGIN CERTIFICATE-----([^-]*)-----END CERTIFICATE-----/g;

/**
 * decodeUrlEncodedPem reads URL-encoded PEM (Envoy's `Cert` and `Chain`,
 * nginx's `$ssl_client_escaped_cert`, AWS ALB's `X-Amzn-Mtls-Clientcert`) and
 * returns its first certificate: the leaf, since every one of these proxies
 * puts the leaf first. The text must be nothing but `CERTIFICATE` blocks and
 * whitespace; with `single`, exactly one block. Anything else (a bad `%`
 * escape, a truncated block, broken base64, a private key, stray text) is
 * invalid: a proxy never sends it, so it is a forgery or a misconfiguration.
 */
export function decodeUrlEncodedPem(value: string, single: boolean): DecodedCertificate {
  let text: string;
  try {
    text = decodeURIComponent(value);
  } catch {
    return { kind: "invalid", message: "bad URL encoding" };
  }
  const ders: Uint8Array[] = [];
  let rest = "";
  let last = 0;
  for (const match of text.matchAll(certificateBlock)) {
    rest += text.slice(last, match.index);
    last = match.index + match[0].length;
    const body = (match[1] ?? "").replace(/\s+/g, "");
    if (body.length === 0 || body.length % 4 !== 0 || !base64.test(body)) {
      return { kind: "invalid", message: "bad base64 in a CERTIFICATE block" };
    }
    ders.push(new Uint8Array(Buffer.from(body, "base64")));
  }
  rest += text.slice(last);
  if (rest.trim().length > 0) {
    return {
      kind: "invalid",
      message: ders.length === 0 ? "no complete CERTIFICATE block" : "text other than CERTIFICATE blocks",
    };
  }
  const leaf = ders[0];
  if (leaf === undefined) {
    return { kind: "invalid", message: "no complete CERTIFICATE block" };
  }
  if (single && ders.length > 1) {
    return { kind: "invalid", message: "more than one certificate" };
  }
  return decodeDer(leaf);
}

/**
 * decodeBase64Der reads a certificate sent as base64 DER without PEM armour
 * (Azure App Service's `X-ARR-ClientCert`).
 */
export function decodeBase64Der(value: string): DecodedCertificate {
  if (value.length % 4 !== 0 || !base64.test(value)) {
    return { kind: "invalid", message: "bad base64" };
  }
  return decodeDer(new Uint8Array(Buffer.from(value, "base64")));
}

/**
 * decodeEscapedBase64Der reads the leaf of a base64 DER header that may be
 * URL-escaped and list a chain separated by commas, leaf first (Traefik's
 * `passTLSClientCert`); plain base64 DER (Caddy) reads as it is.
 */
export function decodeEscapedBase64Der(value: string): DecodedCertificate {
  let text = value;
  if (text.includes("%")) {
    try {
      text = decodeURIComponent(text);
    } catch {
      return { kind: "invalid", message: "bad URL escaping" };
    }
  }
  const comma = text.indexOf(",");
  return decodeBase64Der((comma < 0 ? text : text.slice(0, comma)).trim());
}

/**
 * decodeDer parses DER bytes into a `Certificate`.
 */
export function decodeDer(der: Uint8Array): DecodedCertificate {
  try {
    return { kind: "certificate", certificate: parseCertificate(der) };
  } catch {
    return { kind: "invalid", message: "not an X.509 certificate" };
  }
}
