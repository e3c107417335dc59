import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { parseCertificate, type Certificate } from "../core/certificate.js";
import type { StoredCertificate } from "../core/store.js";
import { readListedFields, type ListedFields } from "./listed-fields.js";
import { CertificateSchema, type Certificate as CertificateMessage } from "../gen/certgate/v1/certificate_store_pb.js";

/**
 * certificateMessage turns a stored certificate into the full `Certificate`
 * message of Create, Get, List and Verify answers. `parsed` saves parsing
 * the DER again when the caller has it.
 */
export function certificateMessage(stored: StoredCertificate, parsed?: Certificate): CertificateMessage {
  // Listings read the fields with certgate's DER reader where it can: see readListedFields.
  let certificate: ListedFields | undefined = parsed ?? readListedFields(stored.der);
  if (certificate === undefined) {
    try {
      certificate = parseCertificate(stored.der);
    } catch {
      // A stored certificate that no longer parses (a damaged store) is still
      // listed, so that an operator can see and delete it.
      return watchCertificateMessage(stored, true);
    }
  }
  return create(CertificateSchema, {
    certificateId: stored.id,
    sha1Thumbprint: stored.sha1,
    sha256Thumbprint: stored.sha256,
    subject: certificate.subject,
    issuer: certificate.issuer,
    serialNumber: certificate.serialNumber,
    notBefore: timestampFromDate(certificate.notBefore),
    notAfter: timestampFromDate(certificate.notAfter),
    der: stored.der,
    labels: { ...stored.labels },
    createTime: timestampFromDate(stored.createTime),
    isCa: certificate.isCA,
  });
}

/**
 * watchCertificateMessage turns a stored certificate into the light
 * `Certificate` message of watch events: id, thumbprints, labels and create
 * time, and the DER when asked for; no parsing.
 */
export function watchCertificateMessage(stored: StoredCertificate, includeDer: boolean): CertificateMessage {
  return create(CertificateSchema, {
    certificateId: stored.id,
    sha1Thumbprint: stored.sha1,
    sha256Thumbprint: stored.sha256,
    der: includeDer ? stored.der : new Uint8Array(0),
    labels: { ...stored.labels },
    createTime: timestampFromDate(stored.createTime),
  });
}
