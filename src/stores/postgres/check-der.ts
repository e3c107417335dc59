import { Code, ConnectError } from "@connectrpc/connect";
import { checkUpload } from "../directory/store-io.js";
import { isPlainCertificateDer } from "../../core/plain-certificate-der.js";
import { readValidity } from "../../core/certificate-validity.js";
import { checkLabels } from "../../core/labels.js";

/**
 * checkDer returns a copy of the one DER certificate in `der`, or throws
 * `InvalidArgument`. A DER that `isPlainCertificateDer` takes for one
 * certificate (the batch upload's check) passes at once; otherwise the folder store's validators decide
 * (a private key, a bundle, junk and bad labels are refused there); PEM is refused, as the
 * memory store does, since the service always gives DER.
 */
export function checkDer(der: Uint8Array, labels: unknown): Uint8Array {
  if (!(der instanceof Uint8Array) || der[0] !== 0x30) {
    throw new ConnectError("certificate could not be parsed: expected DER", Code.InvalidArgument);
  }
  // The common shape, checked by certgate's DER reader in microseconds
  // (a bulk load stores thousands a second); anything else is parsed in full.
  if (isPlainCertificateDer(der) && checkLabels(labels) === undefined) {
    try {
      readValidity(der);
      return Uint8Array.prototype.slice.call(der);
    } catch {
      // The full check below decides and says why.
    }
  }
  const certificate = checkUpload(der, labels);
  if (certificate.length !== der.length) {
    throw new ConnectError("certificate could not be parsed: trailing bytes", Code.InvalidArgument);
  }
  return certificate;
}
