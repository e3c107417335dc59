import type { Certificate } from "../core/certificate.js";
import { readCertificateNames } from "./certificate-names.js";
import type { DistinguishedName, NameAttribute } from "./distinguished-name.js";
import { formatDistinguishedName } from "./distinguished-name-text.js";
import { parseSpiffeId } from "./spiffe.js";

/**
 * NameFields are the usual attributes of a distinguished name, for handlers.
 * Where a name has an attribute twice, the single-valued fields hold the most
 * specific one (the last in ASN.1 order).
 */
export interface NameFields {
  /** The name in RFC 4514 form, such as `CN=alice,O=Contoso\, Inc.,C=US`. */
  readonly text: string;
  readonly commonName: string | undefined;
  readonly organization: string | undefined;
  readonly organizationalUnits: readonly string[];
  readonly country: string | undefined;
  readonly stateOrProvince: string | undefined;
  readonly locality: string | undefined;
  readonly serialNumber: string | undefined;
  readonly emailAddress: string | undefined;
  readonly domainComponents: readonly string[];
  /** Every attribute, RDN by RDN, in ASN.1 order. */
  readonly name: DistinguishedName;
}

/**
 * ClientIdentity is the identity a client certificate states, in typed form:
 * what handlers authorize on. Get it with `clientIdentity(ctx)`.
 */
export interface ClientIdentity {
  readonly subject: NameFields;
  readonly issuer: NameFields;
  /** DNS names of the subject alternative name. */
  readonly dnsNames: readonly string[];
  /** URIs of the subject alternative name. */
  readonly uris: readonly string[];
  /** Email addresses of the subject alternative name. */
  readonly emails: readonly string[];
  /** IP addresses of the subject alternative name. */
  readonly ipAddresses: readonly string[];
  /**
   * The SPIFFE ID: the one URI SAN when the certificate has exactly one URI
   * SAN and it is a valid `spiffe://` ID (an X.509-SVID); undefined otherwise.
   */
  readonly spiffeId: string | undefined;
  /** SHA-1 thumbprint, upper-case hex. */
  readonly sha1: string;
  /** SHA-256 thumbprint, upper-case hex. */
  readonly sha256: string;
  /** Serial number, upper-case hex. */
  readonly serialNumber: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** The certificate itself. */
  readonly certificate: Certificate;
}

const identities = new WeakMap<Certificate, ClientIdentity>();
const names = new WeakMap<Certificate, ReturnType<typeof readCertificateNames>>();

/**
 * certificateNamesOf returns the subject and issuer of a certificate as
 * structured names, read from its DER once per certificate.
 */
export function certificateNamesOf(certificate: Certificate): ReturnType<typeof readCertificateNames> {
  let result = names.get(certificate);
  if (result === undefined) {
    result = readCertificateNames(certificate.der);
    names.set(certificate, result);
  }
  return result;
}

function fields(name: DistinguishedName): NameFields {
  const all: NameAttribute[] = name.flat();
  const values = (type: string) => all.filter((a) => a.type === type).map((a) => a.value);
  const last = (type: string) => values(type).at(-1);
  return Object.freeze({
    text: formatDistinguishedName(name),
    commonName: last("2.5.4.3"),
    organization: last("2.5.4.10"),
    organizationalUnits: values("2.5.4.11"),
    country: last("2.5.4.6"),
    stateOrProvince: last("2.5.4.8"),
    locality: last("2.5.4.7"),
    serialNumber: last("2.5.4.5"),
    emailAddress: last("1.2.840.113549.1.9.1"),
    domainComponents: values("0.9.2342.19200300.100.1.25"),
    name,
  });
}

/**
 * spiffeIdOf returns the SPIFFE ID of a certificate (see
 * `ClientIdentity.spiffeId`), or undefined.
 */
export function spiffeIdOf(certificate: Certificate): string | undefined {
  const uris = certificate.subjectAltNames.uri;
  const only = uris.length === 1 ? uris[0] : undefined;
  return only !== undefined && parseSpiffeId(only) !== undefined ? only : undefined;
}

/**
 * identityOf returns the `ClientIdentity` of a certificate, computed once per
 * certificate (so once per connection). It throws a `RangeError` if the
 * certificate's names cannot be read.
 */
export function identityOf(certificate: Certificate): ClientIdentity {
  let identity = identities.get(certificate);
  if (identity === undefined) {
    const { subject, issuer } = certificateNamesOf(certificate);
    const san = certificate.subjectAltNames;
    identity = Object.freeze({
      subject: fields(subject),
      issuer: fields(issuer),
      dnsNames: san.dns,
      uris: san.uri,
      emails: san.email,
      ipAddresses: san.ip,
      spiffeId: spiffeIdOf(certificate),
      sha1: certificate.sha1,
      sha256: certificate.sha256,
      serialNumber: certificate.serialNumber,
      notBefore: certificate.notBefore,
      notAfter: certificate.notAfter,
      certificate,
    });
    identities.set(certificate, identity);
  }
  return identity;
}
