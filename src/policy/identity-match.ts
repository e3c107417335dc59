import { parseCertificate, type Certificate } from "../core/certificate.js";
import { normalizeThumbprint, thumbprintsEqual } from "../core/thumbprint.js";
import { canonicalSerialNumber } from "../core/serial-number.js";
import type { StoredCertificate } from "../core/store.js";
import { certificateNamesOf, identityOf, spiffeIdOf } from "./client-identity.js";
import { attributeValuesEqual, distinguishedNamesEqual, type DistinguishedName } from "./distinguished-name.js";
import { parseDistinguishedName } from "./distinguished-name-text.js";
import { compileUriPattern, type UriPattern } from "./spiffe.js";

/**
 * CertificateIdentity describes certificates to admit, like an `identity` of
 * a gateway's validate-client-certificate policy: a certificate matches when
 * every field given matches. At least one field is required.
 */
export interface CertificateIdentity {
  /** SHA-1 or SHA-256 thumbprint of the certificate, in any spelling `normalizeThumbprint` accepts. */
  thumbprint?: string;
  /** Serial number, hex (case, colons, spaces and leading zeros do not matter). */
  serialNumber?: string;
  /** The subject's common name, compared ignoring case and extra spaces. */
  commonName?: string;
  /** The subject DN, compared as a name (see `parseDistinguishedName`). */
  subject?: string;
  /** A DNS name of the subject alternative name (ignoring case and a trailing dot). */
  dnsName?: string;
  /**
   * A URI of the subject alternative name, exactly; or a SPIFFE prefix such
   * as `spiffe://example.org/*`, matching a certificate whose SPIFFE ID lies
   * under it (see `ClientIdentity.spiffeId`).
   */
  uri?: string;
  /** The issuer DN of the certificate, compared as a name. */
  issuerSubject?: string;
  /**
   * SHA-1 or SHA-256 thumbprint of the CA certificate that issued it, as
   * found when building the chain (needs `validateTrust.ca` or
   * `validateRevocation.ca`).
   */
  issuerThumbprint?: string;
  /**
   * The id of the CA certificate that issued it, in `issuerCertificates` (by
   * default, the store's `get`): the certificate must be signed by it.
   */
  issuerCertificateId?: string;
}

const fields = new Set<string>([
  "thumbprint",
  "serialNumber",
  "commonName",
  "subject",
  "dnsName",
  "uri",
  "issuerSubject",
  "issuerThumbprint",
  "issuerCertificateId",
]);

/**
 * IssuerCertificateSource finds a CA certificate by id for
 * `issuerCertificateId`: a function, or a store with `get` such as a
 * `WritableCertificateStore` (whose `onChange` then clears certgate's cache).
 */
export type IssuerCertificateSource =
  | ((id: string) => Promise<StoredCertificate | Certificate | undefined>)
  | {
      get(id: string): Promise<StoredCertificate | Certificate | undefined>;
      onChange?(listener: (revision: number) => void): () => void;
      readonly revision?: number;
    };

interface CompiledIdentity {
  readonly thumbprint?: string;
  readonly serialNumber?: string;
  readonly commonName?: string;
  readonly subject?: DistinguishedName;
  readonly dnsName?: string;
  readonly uri?: UriPattern;
  readonly issuerSubject?: DistinguishedName;
  readonly issuerThumbprint?: string;
  readonly issuerCertificateId?: string;
}

/**
 * IdentityFacts is what identities are matched against, once per connection.
 */
export interface IdentityFacts {
  readonly certificate: Certificate;
  /** The chain, leaf first, if one was built. */
  readonly chain: readonly Certificate[] | undefined;
  /** Finds a CA certificate by id; rejects when the source fails. */
  readonly issuerById: (id: string) => Promise<Certificate | undefined>;
}

/**
 * IdentityMatcher matches a certificate against a list of identities.
 */
export interface IdentityMatcher {
  /** Whether some identity uses `issuerThumbprint` (and so needs a chain). */
  readonly needsChain: boolean;
  /** Whether some identity uses `issuerCertificateId`. */
  readonly needsIssuerLookup: boolean;
  /** Resolves true when every field of at least one identity matches. */
  match(facts: IdentityFacts): Promise<boolean>;
}

function normalizeDns(name: string): string {
  return name.trim().toLowerCase().replace(/\.$/, "");
}

/**
 * compileIdentities checks and prepares `identities` once, at start-up. It
 * throws a `TypeError` naming the entry and field for an empty list, an
 * identity without fields, an unknown field (a typo must not widen the
 * policy) or a value that does not parse.
 */
export function compileIdentities(identities: readonly CertificateIdentity[], where: string): IdentityMatcher {
  if (!Array.isArray(identities) || identities.length === 0) {
    throw new TypeError(`certgate: ${where} must be a non-empty array of identities`);
  }
  const compiled = identities.map((identity, i): CompiledIdentity => {
    const at = `${where}[${i}]`;
    if (typeof identity !== "object" || identity === null) throw new TypeError(`certgate: ${at} must be an object`);
    const keys = Object.keys(identity).filter((k) => (identity as Record<string, unknown>)[k] !== undefined);
    for (const key of keys) {
      if (!fields.has(key))
        throw new TypeError(
          `certgate: ${at} has an unknown field ${JSON.stringify(key)}; known: ${[...fields].join(", ")}`,
        );
      if (
        typeof (identity as Record<string, unknown>)[key] !== "string" ||
        ((identity as Record<string, unknown>)[key] as string).trim() === ""
      ) {
        throw new TypeError(`certgate: ${at}.${key} must be a non-empty string`);
      }
    }
    if (keys.length === 0) throw new TypeError(`certgate: ${at} has no field: it would match every certificate`);
    const wrap = <T>(key: string, f: () => T): T => {
      try {
        return f();
      } catch (error) {
        throw new TypeError(`certgate: ${at}.${key}: ${(error as Error).message}`);
      }
    };
    const serial = identity.serialNumber;
    let serialNumber: string | undefined;
    try {
      serialNumber = serial === undefined ? undefined : canonicalSerialNumber(serial);
    } catch {
      throw new TypeError(`certgate: ${at}.serialNumber must be hex, got ${JSON.stringify(serial)}`);
    }
    return {
      ...(identity.thumbprint !== undefined && {
        thumbprint: wrap("thumbprint", () => normalizeThumbprint(identity.thumbprint as string)),
      }),
      ...(serialNumber !== undefined && { serialNumber }),
      ...(identity.commonName !== undefined && { commonName: identity.commonName }),
      ...(identity.subject !== undefined && {
        subject: wrap("subject", () => parseDistinguishedName(identity.subject as string)),
      }),
      ...(identity.dnsName !== undefined && { dnsName: normalizeDns(identity.dnsName) }),
      ...(identity.uri !== undefined && { uri: wrap("uri", () => compileUriPattern(identity.uri as string)) }),
      ...(identity.issuerSubject !== undefined && {
        issuerSubject: wrap("issuerSubject", () => parseDistinguishedName(identity.issuerSubject as string)),
      }),
      ...(identity.issuerThumbprint !== undefined && {
        issuerThumbprint: wrap("issuerThumbprint", () => normalizeThumbprint(identity.issuerThumbprint as string)),
      }),
      ...(identity.issuerCertificateId !== undefined && { issuerCertificateId: identity.issuerCertificateId }),
    };
  });

  const thumbprintOf = (c: Certificate, t: string) => (t.length === 40 ? c.sha1 : c.sha256);

  // The fields that need no I/O; the issuer look-up comes last.
  function matchLocal(id: CompiledIdentity, facts: IdentityFacts): boolean {
    const c = facts.certificate;
    if (id.thumbprint !== undefined && !thumbprintsEqual(id.thumbprint, thumbprintOf(c, id.thumbprint))) return false;
    if (id.serialNumber !== undefined && id.serialNumber !== c.serialNumber) return false;
    if (id.commonName !== undefined) {
      const cn = identityOf(c).subject.commonName;
      if (cn === undefined || !attributeValuesEqual("2.5.4.3", id.commonName, cn)) return false;
    }
    if (id.subject !== undefined && !distinguishedNamesEqual(id.subject, certificateNamesOf(c).subject)) return false;
    if (id.issuerSubject !== undefined && !distinguishedNamesEqual(id.issuerSubject, certificateNamesOf(c).issuer))
      return false;
    if (id.dnsName !== undefined && !c.subjectAltNames.dns.some((d) => normalizeDns(d) === id.dnsName)) return false;
    if (id.uri !== undefined) {
      const pattern = id.uri;
      if (pattern.text.endsWith("/*")) {
        const spiffeId = spiffeIdOf(c);
        if (spiffeId === undefined || !pattern.matches(spiffeId)) return false;
      } else if (!c.subjectAltNames.uri.some((u) => pattern.matches(u))) {
        return false;
      }
    }
    if (id.issuerThumbprint !== undefined) {
      const issuer = facts.chain?.[1];
      if (issuer === undefined || !thumbprintsEqual(id.issuerThumbprint, thumbprintOf(issuer, id.issuerThumbprint)))
        return false;
    }
    return true;
  }

  return {
    needsChain: compiled.some((id) => id.issuerThumbprint !== undefined),
    needsIssuerLookup: compiled.some((id) => id.issuerCertificateId !== undefined),
    async match(facts) {
      for (const id of compiled) {
        if (!matchLocal(id, facts)) continue;
        if (id.issuerCertificateId === undefined) return true;
        const issuer = await facts.issuerById(id.issuerCertificateId);
        const leaf = facts.certificate.x509;
        if (issuer !== undefined && leaf.checkIssued(issuer.x509) && leaf.verify(issuer.x509.publicKey)) return true;
      }
      return false;
    },
  };
}

/**
 * IssuerResolver looks CA certificates up by id, caching them while the
 * source reports no change.
 */
export interface IssuerResolver {
  /** Changes when the source reports a change. */
  readonly revision: number;
  get(id: string): Promise<Certificate | undefined>;
}

/**
 * createIssuerResolver wraps an `IssuerCertificateSource`. Without
 * `onChange` nothing is cached across connections.
 */
export function createIssuerResolver(source: IssuerCertificateSource): IssuerResolver {
  const get = typeof source === "function" ? source : source.get.bind(source);
  const onChange = typeof source === "function" ? undefined : source.onChange?.bind(source);
  const cache = new Map<string, Promise<Certificate | undefined>>();
  let revision = 1;
  onChange?.(() => {
    revision++;
    cache.clear();
  });
  const fetch = async (id: string): Promise<Certificate | undefined> => {
    const found = await get(id);
    if (found === undefined) return undefined;
    return "x509" in found ? found : parseCertificate(found.der);
  };
  return {
    get revision() {
      return revision;
    },
    get(id) {
      if (onChange === undefined) return fetch(id);
      let hit = cache.get(id);
      if (hit === undefined) {
        hit = fetch(id);
        cache.set(id, hit);
        hit.catch(() => cache.delete(id)); // never cache a failure
      }
      return hit;
    },
  };
}
