// The headers that tell the upstream who was admitted. Their names are
// contract names; values are made safe for a header line.
import type { Admission } from "../core/enforcement.js";
import type { Certificate } from "../core/certificate.js";
import type { StoreEntry } from "../core/store.js";

/**
 * IdentityHeader is one header of an admission: a name and a value, both
 * safe to put on a header line as they are.
 */
export type IdentityHeader = readonly [name: string, value: string];

/**
 * identityHeaderNames are the fixed names of the identity headers; labels
 * add `Certgate-Label-KEY`.
 */
export const identityHeaderNames = Object.freeze({
  subject: "Certgate-Subject",
  sha256: "Certgate-Sha256",
  certificateId: "Certgate-Certificate-Id",
  labelPrefix: "Certgate-Label-",
});

/**
 * refusalReasonHeader names the header of a refusal that says why, such as
 * `expired` or `untrusted_proxy`.
 */
export const refusalReasonHeader = "Certgate-Refusal-Reason";

/**
 * headerSafe returns `value` unchanged when it is printable ASCII without
 * `%`, else with every other byte of its UTF-8 percent-encoded (as in a
 * URL), so that no value can end a header line or carry bytes proxies
 * reject, and the upstream can decode it with `decodeURIComponent`.
 */
export function headerSafe(value: string): string {
  if (/^[\x20-\x24\x26-\x7e]*$/.test(value)) return value;
  let out = "";
  for (const byte of Buffer.from(value, "utf8")) {
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

const tokenCharacters = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * labelHeaderName returns the header of a label: `Certgate-Label-` and the
 * key, with `/` (allowed in label keys, not in header names) written `%2F`.
 * Label keys never hold `%`, so two keys never share a header.
 */
export function labelHeaderName(key: string): string | undefined {
  const name = `${identityHeaderNames.labelPrefix}${key.replaceAll("/", "%2F")}`;
  return tokenCharacters.test(name) ? name : undefined;
}

// Built once per certificate and store entry: a warm answer is a look-up.
const built = new WeakMap<Certificate, { readonly entry: StoreEntry; readonly headers: readonly IdentityHeader[] }>();

/**
 * identityHeaders returns the headers of an admission: the subject, the
 * SHA-256 thumbprint, the store entry's id and its labels.
 */
export function identityHeaders(admission: Admission): readonly IdentityHeader[] {
  const { certificate, entry } = admission;
  const cached = built.get(certificate);
  if (cached !== undefined && cached.entry === entry) return cached.headers;
  const headers: IdentityHeader[] = [
    // One line, as the CLI prints it: "CN=alice, O=Contoso".
    [identityHeaderNames.subject, headerSafe(certificate.subject.split("\n").filter(Boolean).join(", "))],
    [identityHeaderNames.sha256, certificate.sha256],
    [identityHeaderNames.certificateId, headerSafe(entry.id)],
  ];
  for (const [key, value] of Object.entries(entry.labels ?? {})) {
    const name = labelHeaderName(key);
    if (name !== undefined && typeof value === "string") headers.push([name, headerSafe(value)]);
  }
  const frozen = Object.freeze(headers);
  built.set(certificate, { entry, headers: frozen });
  return frozen;
}
