import { Code, ConnectError } from "@connectrpc/connect";
import { checkUpload } from "../directory/store-io.js";

/**
 * checkDer returns a copy of the one DER certificate in `der`, or throws
 * `InvalidArgument`. The folder store's validators decide (a private key, a
 * bundle, junk and bad labels are refused there); PEM is refused, as the
 * memory store does, since the service always gives DER.
 */
export function checkDer(der: Uint8Array, labels: unknown): Uint8Array {
  if (!(der instanceof Uint8Array) || der[0] !== 0x30) {
    throw new ConnectError("certificate could not be parsed: expected DER", Code.InvalidArgument);
  }
  const certificate = checkUpload(der, labels);
  if (certificate.length !== der.length) {
    throw new ConnectError("certificate could not be parsed: trailing bytes", Code.InvalidArgument);
  }
  return certificate;
}
