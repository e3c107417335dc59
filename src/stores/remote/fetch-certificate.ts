import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type {
  CertificateStoreService,
  Certificate as CertificateMessage,
} from "../../gen/certgate/v1/certificate_store_pb.js";
import { isValidCertificateId } from "../../core/store.js";
import type { RemoteCertificate, RemoteCertificateResult } from "./types.js";

/**
 * CertificateFetcherOptions configures `createCertificateFetcher`.
 */
export interface CertificateFetcherOptions {
  /** One client per replica. */
  readonly clients: readonly Client<typeof CertificateStoreService>[];
  /** Which replica to ask first (the one followed or answering now). */
  readonly preferred: () => number;
  /** How long one GetCertificate call may take, in milliseconds. */
  readonly timeoutMs: number;
  /** Aborted when the store closes. */
  readonly closing: AbortSignal;
}

/**
 * createCertificateFetcher returns the `getCertificate` of a remote store:
 * GetCertificate on each replica in turn, from the preferred one, each call
 * within its deadline. It is for what people look at (the DER, subject,
 * labels of an admitted certificate); decisions never wait on it, so a
 * service that is down makes it answer `error` while the mirror keeps
 * deciding from memory.
 */
export function createCertificateFetcher(
  options: CertificateFetcherOptions,
): (id: string, signal?: AbortSignal) => Promise<RemoteCertificateResult> {
  const { clients, timeoutMs, closing } = options;
  return async (id, signal) => {
    if (typeof id !== "string" || !isValidCertificateId(id)) {
      return { kind: "error", error: new TypeError(`getCertificate(): not a certificate id: ${JSON.stringify(id)}`) };
    }
    if (closing.aborted) return { kind: "error", error: new Error("remote store is closed") };
    let failure: unknown;
    const first = options.preferred();
    for (let i = 0; i < clients.length; i++) {
      if (signal?.aborted === true || closing.aborted) break;
      const client = clients[(first + i) % clients.length]!;
      // One controller per call, its listeners removed after it: not
      // AbortSignal.any, whose listeners on the long-lived `closing` pile up.
      const call = new AbortController();
      const stop = () => call.abort();
      closing.addEventListener("abort", stop);
      signal?.addEventListener("abort", stop);
      try {
        const response = await client.getCertificate({ certificateId: id }, { signal: call.signal, timeoutMs });
        if (response.certificate === undefined) {
          return { kind: "error", error: new Error("the certificate store service answered without a certificate") };
        }
        return { kind: "found", certificate: remoteCertificate(response.certificate) };
      } catch (error) {
        if (ConnectError.from(error).code === Code.NotFound) return { kind: "not_found" };
        failure = error;
      } finally {
        closing.removeEventListener("abort", stop);
        signal?.removeEventListener("abort", stop);
      }
    }
    return { kind: "error", error: failure ?? new Error("getCertificate(): aborted") };
  };
}

function remoteCertificate(message: CertificateMessage): RemoteCertificate {
  const date = (t: CertificateMessage["notBefore"]) => (t === undefined ? new Date(Number.NaN) : timestampDate(t));
  return {
    id: message.certificateId,
    der: message.der,
    sha1: message.sha1Thumbprint,
    sha256: message.sha256Thumbprint,
    labels: Object.freeze({ ...message.labels }),
    createTime: date(message.createTime),
    subject: message.subject,
    issuer: message.issuer,
    serialNumber: message.serialNumber,
    notBefore: date(message.notBefore),
    notAfter: date(message.notAfter),
    isCa: message.isCa,
  };
}
