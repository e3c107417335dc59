import type { Certificate } from "../core/certificate.js";
import { decodeBase64Der, decodeEscapedBase64Der, decodeUrlEncodedPem } from "./encoded-certificate.js";
import { parseXfcc, selectXfccCertificate } from "./xfcc.js";

/**
 * ForwardingFormat names a way proxies forward a client certificate in a
 * request header:
 *
 * - `xfcc`: Envoy's `x-forwarded-client-cert` (Envoy, Istio and other
 *   Envoy-based meshes and gateways), with the `Cert` (or `Chain`) key.
 * - `nginx`: a header of your choice set to nginx's
 *   `$ssl_client_escaped_cert` (URL-encoded PEM).
 * - `azure-app-service`: Azure App Service's `X-ARR-ClientCert` (base64 DER).
 * - `aws-alb`: AWS Application Load Balancer's `X-Amzn-Mtls-Clientcert`
 *   (mTLS passthrough mode: URL-encoded PEM chain, leaf first).
 * - `der-base64`: a header of your choice holding the base64 DER of the leaf,
 *   as Caddy's `{http.request.tls.client.certificate_der_base64}` placeholder
 *   and Traefik's `passTLSClientCert` (`X-Forwarded-Tls-Client-Cert`, whose
 *   URL escaping and comma-separated chain are read too: the first is the leaf).
 */
export type ForwardingFormat = "xfcc" | "nginx" | "azure-app-service" | "aws-alb" | "der-base64";

/**
 * ForwardingFormatWithHeader is a format whose header name you choose.
 */
export type ForwardingFormatWithHeader = "nginx" | "der-base64";

/**
 * forwardingFormats lists every `ForwardingFormat`.
 */
export const forwardingFormats: readonly ForwardingFormat[] = Object.freeze([
  "xfcc",
  "nginx",
  "azure-app-service",
  "aws-alb",
  "der-base64",
]);

/**
 * forwardingHeaders maps the formats whose header name is fixed to that name,
 * lower case (as Node presents header names).
 */
export const forwardingHeaders: Readonly<Record<Exclude<ForwardingFormat, ForwardingFormatWithHeader>, string>> =
  Object.freeze({
    xfcc: "x-forwarded-client-cert",
    "azure-app-service": "x-arr-clientcert",
    "aws-alb": "x-amzn-mtls-clientcert",
  });

/**
 * ForwardedCertificate is what one forwarding header says of the client.
 */
export type ForwardedCertificate =
  | {
      readonly kind: "certificate";
      readonly certificate: Certificate;
    }
  | {
      readonly kind: "none";
      /**
       * `empty`: the header is empty; for `xfcc`, `hash_only`, `no_cert` and
       * `only_proxies` (see `selectXfccCertificate`).
       */
      readonly why: "empty" | "hash_only" | "no_cert" | "only_proxies";
    }
  | {
      readonly kind: "invalid";
      /** What is wrong, for logs; never shown to the client. */
      readonly message: string;
    };

/**
 * ReadForwardedOptions are the limits and trust that reading a header needs.
 */
export interface ReadForwardedOptions {
  /** The most elements an XFCC header may have. */
  readonly maxXfccElements: number;
  /** Whether a certificate named in an XFCC element is a trusted proxy's. */
  readonly isTrustedProxy: (thumbprints: { sha1?: string; sha256: string }) => boolean;
}

const unfilledPlaceholder = /^\{[A-Za-z0-9_.]+\}$/;

/**
 * readForwardedCertificate reads the client certificate out of the value of a
 * forwarding header of the given format. It never throws: a value a proxy
 * would not send is `invalid`. Length limits are the caller's, applied before.
 */
export function readForwardedCertificate(
  format: ForwardingFormat,
  value: string,
  options: ReadForwardedOptions,
): ForwardedCertificate {
  const text = value.trim();
  if (text.length === 0) {
    return { kind: "none", why: "empty" };
  }
  switch (format) {
    case "xfcc": {
      const parsed = parseXfcc(text, options.maxXfccElements);
      if (parsed.kind === "malformed") {
        return { kind: "invalid", message: parsed.message };
      }
      const selected = selectXfccCertificate(parsed.elements, options.isTrustedProxy);
      return selected.kind === "certificate" ? { kind: "certificate", certificate: selected.certificate } : selected;
    }
    case "nginx":
      // nginx forwards the leaf alone.
      return decodeUrlEncodedPem(text, true);
    case "aws-alb":
      // Passthrough mode forwards the whole chain the client sent, leaf first.
      return decodeUrlEncodedPem(text, false);
    case "azure-app-service":
      return decodeBase64Der(text);
    case "der-base64":
      // Caddy leaves a placeholder it cannot fill as it is: the client
      // presented no certificate.
      return unfilledPlaceholder.test(text) ? { kind: "none", why: "empty" } : decodeEscapedBase64Der(text);
  }
}
