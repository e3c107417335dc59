// OCSP responses (RFC 6960 section 4.2): parsed with certgate's DER reader,
// then checked against the request: who signed it, for which certificate,
// when, and with which nonce.
import { parseCertificate, type Certificate } from "../core/certificate.js";
import { childrenOf, decodeOid, decodeTime, readTlv, type Tlv } from "../core/der.js";
import { extendedKeyUsageOf, readCertificateExtensions, readExtensionList } from "./certificate-extensions.js";
import { verifySignedData } from "./crl.js";
import type { OcspCertId } from "./ocsp-request.js";

/**
 * OcspSingleResponse is the status of one certificate in an OCSP response.
 */
export interface OcspSingleResponse {
  /** The hash algorithm OID of the CertID. */
  readonly hashAlgorithm: string;
  readonly issuerNameHash: Uint8Array;
  readonly issuerKeyHash: Uint8Array;
  /** The contents of the serialNumber INTEGER. */
  readonly serial: Uint8Array;
  readonly status: "good" | "revoked" | "unknown";
  readonly thisUpdate: Date;
  readonly nextUpdate: Date | undefined;
}

/**
 * ParsedOcspResponse is an OCSPResponse: its status, and for a successful
 * basic response, the signed data and what it says.
 */
export interface ParsedOcspResponse {
  /** OCSPResponseStatus: 0 successful, 1 malformedRequest, 2 internalError, 3 tryLater, 5 sigRequired, 6 unauthorized. */
  readonly responseStatus: number;
  /** Undefined unless the response is a successful id-pkix-ocsp-basic response. */
  readonly basic:
    | {
        /** The DER of tbsResponseData, the signed part. */
        readonly tbs: Uint8Array;
        readonly signatureAlgorithm: string;
        readonly signature: Uint8Array;
        /** Certificates sent with the response (a delegated responder's), DER. */
        readonly certs: readonly Uint8Array[];
        readonly responses: readonly OcspSingleResponse[];
        /** The nonce extension's value, if any. */
        readonly nonce: Uint8Array | undefined;
      }
    | undefined;
}

const basicOid = "1.3.6.1.5.5.7.48.1.1";
const nonceOid = "1.3.6.1.5.5.7.48.1.2";
const sha1Oid = "1.3.14.3.2.26";
const ocspSigning = "1.3.6.1.5.5.7.3.9";
const maxResponses = 64;

function expect(tlv: Tlv | undefined, tag: number): Tlv {
  if (tlv === undefined || tlv.tag !== tag) throw new RangeError("der: not an OCSP response");
  return tlv;
}

/**
 * parseOcspResponse reads a DER OCSPResponse. It throws a `RangeError` on
 * a malformed encoding.
 */
export function parseOcspResponse(der: Uint8Array): ParsedOcspResponse {
  const top = readTlv(der, 0);
  if (top.tag !== 0x30 || top.end !== der.length) throw new RangeError("der: not an OCSP response");
  const [statusTlv, bytesTlv] = childrenOf(der, top, 2);
  const status = expect(statusTlv, 0x0a);
  if (status.end - status.contentStart !== 1) throw new RangeError("der: bad OCSP response status");
  const responseStatus = der[status.contentStart] ?? 0;
  if (bytesTlv === undefined) return { responseStatus, basic: undefined };
  const responseBytes = expect(readTlv(der, expect(bytesTlv, 0xa0).contentStart, bytesTlv.end), 0x30);
  const [typeTlv, octets] = childrenOf(der, responseBytes, 2);
  if (decodeOid(der, expect(typeTlv, 0x06)) !== basicOid) return { responseStatus, basic: undefined };
  const inner = expect(octets, 0x04);
  const basic = expect(readTlv(der, inner.contentStart, inner.end), 0x30);
  const [tbsTlv, algorithm, signature, certsTlv] = childrenOf(der, basic, 4);
  const tbs = expect(tbsTlv, 0x30);
  const algorithmOid = decodeOid(der, expect(childrenOf(der, expect(algorithm, 0x30), 1)[0], 0x06));
  expect(signature, 0x03);
  const certs: Uint8Array[] = [];
  if (certsTlv !== undefined) {
    const list = expect(readTlv(der, expect(certsTlv, 0xa0).contentStart, certsTlv.end), 0x30);
    for (const c of childrenOf(der, list, 8)) certs.push(der.slice(expect(c, 0x30).start, c.end));
  }
  const fields = childrenOf(der, tbs);
  let i = fields[0]?.tag === 0xa0 ? 1 : 0; // version
  const responder = fields[i++];
  if (responder === undefined || (responder.tag !== 0xa1 && responder.tag !== 0xa2)) {
    throw new RangeError("der: bad OCSP responder id");
  }
  decodeTime(der, expect(fields[i++], 0x18)); // producedAt
  const list = expect(fields[i++], 0x30);
  const responses = childrenOf(der, list, maxResponses + 1).map((single) => readSingle(der, single));
  if (responses.length > maxResponses) throw new RangeError("der: too many OCSP single responses");
  let nonce: Uint8Array | undefined;
  const extensions = fields[i];
  if (extensions?.tag === 0xa1) {
    for (const ext of readExtensionList(der, readTlv(der, extensions.contentStart, extensions.end))) {
      if (ext.oid !== nonceOid) continue;
      // RFC 8954: an OCTET STRING; some responders send the bytes bare.
      const v = ext.value;
      nonce = der.slice(v.tag === 0x04 ? v.contentStart : v.start, v.end);
    }
  }
  return {
    responseStatus,
    basic: {
      tbs: der.slice(tbs.start, tbs.end),
      signatureAlgorithm: algorithmOid,
      signature: der.slice((signature as Tlv).contentStart + 1, (signature as Tlv).end),
      certs,
      responses,
      nonce,
    },
  };
}

function readSingle(der: Uint8Array, single: Tlv): OcspSingleResponse {
  const [certId, statusTlv, thisUpdate, next] = childrenOf(der, expect(single, 0x30), 4);
  const [algorithm, nameHash, keyHash, serial] = childrenOf(der, expect(certId, 0x30), 4);
  const hashAlgorithm = decodeOid(der, expect(childrenOf(der, expect(algorithm, 0x30), 1)[0], 0x06));
  if (statusTlv === undefined) throw new RangeError("der: no OCSP certificate status");
  const status =
    statusTlv.tag === 0x80
      ? "good"
      : statusTlv.tag === 0xa1
        ? "revoked"
        : statusTlv.tag === 0x82
          ? "unknown"
          : undefined;
  if (status === undefined) throw new RangeError("der: bad OCSP certificate status");
  let nextUpdate: Date | undefined;
  if (next?.tag === 0xa0) nextUpdate = decodeTime(der, expect(readTlv(der, next.contentStart, next.end), 0x18));
  const n = expect(nameHash, 0x04);
  const k = expect(keyHash, 0x04);
  const s = expect(serial, 0x02);
  return {
    hashAlgorithm,
    issuerNameHash: der.slice(n.contentStart, n.end),
    issuerKeyHash: der.slice(k.contentStart, k.end),
    serial: der.slice(s.contentStart, s.end),
    status,
    thisUpdate: decodeTime(der, expect(thisUpdate, 0x18)),
    nextUpdate,
  };
}

/**
 * OcspFailureReason says why an OCSP answer was not used, for logs and
 * metrics.
 */
export type OcspFailureReason =
  | "malformed"
  | "responder_error"
  | "wrong_certificate"
  | "bad_signature"
  | "stale"
  | "not_yet_valid"
  | "nonce_mismatch";

/**
 * OcspCheck is what a checked OCSP response says of one certificate.
 */
export type OcspCheck =
  | {
      readonly kind: "status";
      readonly status: "good" | "revoked" | "unknown";
      readonly thisUpdate: number;
      readonly nextUpdate: number | undefined;
    }
  | { readonly kind: "invalid"; readonly reason: OcspFailureReason; readonly why: string };

/**
 * OcspCheckOptions is what `checkOcspResponse` checks a response against.
 */
export interface OcspCheckOptions {
  readonly certId: OcspCertId;
  /** The CA that issued the certificate asked about. */
  readonly issuer: Certificate;
  /** The nonce sent, if any: a response carrying another nonce is refused. */
  readonly nonce: Uint8Array | undefined;
  /** The time (epoch ms) and the clock skew allowed (ms). */
  readonly t: number;
  readonly clockSkewMs: number;
}

const equal = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

/**
 * checkOcspResponse parses and checks a DER OCSP response: successful and
 * basic, signed by the issuer or by a responder certificate the issuer
 * signed for OCSP signing (id-kp-OCSPSigning, within its validity window),
 * a single response for `certId`, thisUpdate not in the future, nextUpdate
 * not past (both with `clockSkewMs`), and the nonce when one was sent and
 * returned. The responder certificate's own revocation is not checked
 * (whether or not it carries id-pkix-ocsp-nocheck), as most clients do.
 */
export function checkOcspResponse(der: Uint8Array, options: OcspCheckOptions): OcspCheck {
  let parsed: ParsedOcspResponse;
  try {
    parsed = parseOcspResponse(der);
  } catch (error) {
    return {
      kind: "invalid",
      reason: "malformed",
      why: `the response could not be read (${(error as Error).message})`,
    };
  }
  if (parsed.responseStatus !== 0) {
    return {
      kind: "invalid",
      reason: "responder_error",
      why: `the responder answered status ${parsed.responseStatus}`,
    };
  }
  const basic = parsed.basic;
  if (basic === undefined) return { kind: "invalid", reason: "malformed", why: "not a basic OCSP response" };
  const { certId, issuer, t, clockSkewMs: skew } = options;
  const single = basic.responses.find(
    (r) =>
      r.hashAlgorithm === sha1Oid &&
      equal(r.issuerNameHash, certId.issuerNameHash) &&
      equal(r.issuerKeyHash, certId.issuerKeyHash) &&
      equal(r.serial, certId.serial),
  );
  if (single === undefined) {
    return { kind: "invalid", reason: "wrong_certificate", why: "the response is not about this certificate" };
  }
  const signer = signerOf(basic, issuer, t, skew);
  if (signer !== undefined) return { kind: "invalid", reason: "bad_signature", why: signer };
  if (single.thisUpdate.getTime() > t + skew) {
    return { kind: "invalid", reason: "not_yet_valid", why: "the response's thisUpdate is in the future" };
  }
  const next = single.nextUpdate?.getTime();
  if (next !== undefined && t > next + skew) {
    return { kind: "invalid", reason: "stale", why: "the response is past its nextUpdate" };
  }
  if (options.nonce !== undefined && basic.nonce !== undefined && !equal(basic.nonce, options.nonce)) {
    return { kind: "invalid", reason: "nonce_mismatch", why: "the response carries another request's nonce" };
  }
  return { kind: "status", status: single.status, thisUpdate: single.thisUpdate.getTime(), nextUpdate: next };
}

// Undefined when the issuer or a delegated responder signed; else why not.
function signerOf(
  basic: NonNullable<ParsedOcspResponse["basic"]>,
  issuer: Certificate,
  t: number,
  skew: number,
): string | undefined {
  const direct = verifySignedData(basic.signatureAlgorithm, basic.tbs, basic.signature, issuer.x509);
  if (direct.kind === "valid") return undefined;
  let why = `not signed by the issuer (${direct.why}) and no delegated responder certificate`;
  for (const der of basic.certs) {
    let responder: Certificate;
    try {
      responder = parseCertificate(der);
      readCertificateExtensions(der);
    } catch {
      why = "a responder certificate could not be read";
      continue;
    }
    const x = responder.x509;
    if (!x.checkIssued(issuer.x509) || !x.verify(issuer.x509.publicKey)) {
      why = "the responder certificate is not issued by the certificate's issuer";
      continue;
    }
    if (!(extendedKeyUsageOf(responder)?.includes(ocspSigning) ?? false)) {
      why = "the responder certificate is not allowed to sign OCSP responses";
      continue;
    }
    if (t < responder.notBefore.getTime() - skew || t > responder.notAfter.getTime() + skew) {
      why = "the responder certificate is outside its validity window";
      continue;
    }
    const check = verifySignedData(basic.signatureAlgorithm, basic.tbs, basic.signature, x);
    if (check.kind === "valid") return undefined;
    why = `the responder certificate did not sign it (${check.why})`;
  }
  return why;
}
