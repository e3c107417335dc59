import {
  forwardingFormats,
  forwardingHeaders,
  type ForwardingFormat,
  type ForwardingFormatWithHeader,
} from "./forwarding-formats.js";

/**
 * ForwardingHeader is one header certgate reads forwarded certificates from.
 */
export interface ForwardingHeader {
  readonly format: ForwardingFormat;
  /** The header name, lower case. */
  readonly name: string;
}

/**
 * HeadersLike is a request's headers and raw header list, as Node gives them.
 */
export interface HeadersLike {
  readonly headers?: Readonly<Record<string, string | readonly string[] | undefined>>;
  readonly rawHeaders?: readonly string[];
}

/**
 * PresentHeader is a configured header that a request carries.
 */
export interface PresentHeader<H extends ForwardingHeader = ForwardingHeader> {
  readonly header: H;
  /** The value; undefined when the header was sent more than once. */
  readonly value: string | undefined;
}

const headerName = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;

/**
 * configuredHeaders validates `formats`, `nginxHeader` and `derBase64Header`
 * and returns the headers to read. It throws a `TypeError` naming the
 * problem: no format, an unknown one, `nginx` without a valid `nginxHeader`
 * (or `nginxHeader` without `nginx`, and the same for `der-base64`), or a
 * header that is another format's header.
 */
export function configuredHeaders(
  formats: unknown,
  nginxHeader: unknown,
  derBase64Header?: unknown,
): ForwardingHeader[] {
  if (!Array.isArray(formats) || formats.length === 0) {
    throw new TypeError(
      `certgate: formats is required: name what your proxy sends, one or more of ${forwardingFormats.join(", ")}`,
    );
  }
  const headers: ForwardingHeader[] = [];
  for (const format of new Set<unknown>(formats)) {
    if (!forwardingFormats.includes(format as ForwardingFormat)) {
      throw new TypeError(
        `certgate: unknown forwarding format ${JSON.stringify(format)}; expected one of ${forwardingFormats.join(", ")}`,
      );
    }
    let name: string;
    if (format === "nginx") {
      if (typeof nginxHeader !== "string" || !headerName.test(nginxHeader.toLowerCase())) {
        throw new TypeError(
          `certgate: the nginx format needs nginxHeader, the header nginx sets to $ssl_client_escaped_cert (such as "x-ssl-client-cert"), got ${JSON.stringify(nginxHeader)}`,
        );
      }
      name = nginxHeader.toLowerCase();
    } else if (format === "der-base64") {
      if (typeof derBase64Header !== "string" || !headerName.test(derBase64Header.toLowerCase())) {
        throw new TypeError(
          `certgate: the der-base64 format needs derBase64Header, the header your proxy sets to the certificate's base64 DER (such as "x-client-cert-der"), got ${JSON.stringify(derBase64Header)}`,
        );
      }
      name = derBase64Header.toLowerCase();
    } else {
      name = forwardingHeaders[format as Exclude<ForwardingFormat, ForwardingFormatWithHeader>];
    }
    if (headers.some((h) => h.name === name)) {
      throw new TypeError(`certgate: the header ${JSON.stringify(name)} is the header of another format`);
    }
    headers.push({ format: format as ForwardingFormat, name });
  }
  if (nginxHeader !== undefined && !formats.includes("nginx")) {
    throw new TypeError('certgate: nginxHeader is set but formats does not include "nginx"');
  }
  if (derBase64Header !== undefined && !formats.includes("der-base64")) {
    throw new TypeError('certgate: derBase64Header is set but formats does not include "der-base64"');
  }
  return headers;
}

const none: PresentHeader<never>[] = [];

/**
 * presentHeaders lists which of `headers` the request carries, in the order
 * of `headers`, marking those sent more than once.
 */
export function presentHeaders<H extends ForwardingHeader>(
  req: HeadersLike,
  headers: readonly H[],
): PresentHeader<H>[] {
  const all = req.headers;
  if (all === undefined || all === null) {
    return none;
  }
  let present: PresentHeader<H>[] | undefined;
  for (const header of headers) {
    const value = all[header.name];
    if (value === undefined) {
      continue;
    }
    const once = typeof value === "string" && sentOnce(req.rawHeaders, header.name);
    (present ??= []).push({ header, value: once ? value : undefined });
  }
  return present ?? none;
}

// Node joins a header sent twice into one value with ", " (HTTP/1.1 and
// HTTP/2 alike), which would turn a forged XFCC line plus the proxy's line
// into one plausible header; the raw list still has both. Without a raw list,
// only an array value counts as doubled.
function sentOnce(rawHeaders: readonly string[] | undefined, name: string): boolean {
  if (!Array.isArray(rawHeaders)) {
    return true;
  }
  let count = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const raw = rawHeaders[i] as string;
    if (raw.length === name.length && raw.toLowerCase() === name && ++count > 1) {
      return false;
    }
  }
  return true;
}
