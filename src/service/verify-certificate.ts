import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Certificate } from "../core/certificate.js";
import { normalizeThumbprint } from "../core/thumbprint.js";
import type { StoreVerdict, WritableCertificateStore } from "../core/store.js";
import { containsPrivateKeyText } from "../core/pem-der.js";
import type { DecisionCore } from "../decision/decision.js";
import type {
  VerifyCertificateRequest,
  VerifyCertificateResponseSchema,
} from "../gen/certgate/v1/certificate_store_pb.js";
import { certificateMessage } from "./convert.js";
import { readStore } from "./read-store.js";
import type { StoredThumbprints } from "./stored-thumbprints.js";
import { parseUpload, privateKeyError, uploadError } from "./upload.js";
import type { WatchJournal } from "./watch-journal.js";

/**
 * VerifyCertificateOptions configures `createVerifyHandler`.
 */
export interface VerifyCertificateOptions {
  /** The store a certificate is looked up in. */
  readonly store: WritableCertificateStore;
  /** The journal whose head is the revision each answer names. */
  readonly journal: WatchJournal;
  /** Finds a stored certificate by its thumbprint. */
  readonly thumbprints: StoredThumbprints;
  /** The decision core of the service's `verifyPolicy`; without one, the store and the validity window alone. */
  readonly verifyCore: DecisionCore | undefined;
  /** The current time in ms, for the validity window. */
  readonly now: () => number;
  /** The largest certificate upload, in bytes. */
  readonly maxUploadBytes: number;
}

/**
 * createVerifyHandler answers VerifyCertificate for a certificate or a stored
 * thumbprint: the decision the interceptors would take (with `verifyCore`),
 * or the validity window and the store. A refusal is an answer; a store
 * failure is `Unavailable`.
 */
export function createVerifyHandler(
  options: VerifyCertificateOptions,
): (
  req: VerifyCertificateRequest,
  ctx: HandlerContext,
) => Promise<MessageInitShape<typeof VerifyCertificateResponseSchema>> {
  const { store, journal, thumbprints, verifyCore, now, maxUploadBytes } = options;

  async function verify(
    certificate: Certificate,
    signal: AbortSignal,
  ): Promise<MessageInitShape<typeof VerifyCertificateResponseSchema>> {
    const revision = BigInt(journal.head);
    if (verifyCore !== undefined) {
      // The interceptors' decision, store look-up and online revocation
      // included; it never rejects (a failure is a refusal).
      const decision = await verifyCore.decide({
        certificate,
        authorized: false,
        authorizationError: undefined,
        encrypted: true,
      });
      if (decision.kind === "refused" && decision.reason === "store_unavailable") {
        throw new ConnectError("certificate store unavailable", Code.Unavailable);
      }
      if (decision.kind !== "admitted") {
        return { admitted: false, reason: decision.kind === "refused" ? decision.reason : "error", revision };
      }
      const stored = await readStore(() => store.get(decision.entry.id));
      return {
        admitted: true,
        revision,
        ...(stored === undefined ? {} : { certificate: certificateMessage(stored) }),
      };
    }
    const t = now();
    if (t > certificate.notAfter.getTime()) {
      return { admitted: false, reason: "expired", revision };
    }
    if (t < certificate.notBefore.getTime()) {
      return { admitted: false, reason: "not_yet_valid", revision };
    }
    // A store must not throw from lookup; if one does, it is a failure all the same.
    const verdict: StoreVerdict = await Promise.resolve()
      .then(() => store.lookup(certificate, signal))
      .catch((error: unknown) => ({ kind: "error", error }));
    if (verdict.kind === "error") {
      throw new ConnectError("certificate store unavailable", Code.Unavailable, undefined, undefined, verdict.error);
    }
    if (verdict.kind === "refused") {
      return { admitted: false, reason: verdict.reason, revision };
    }
    const stored = await readStore(() => store.get(verdict.entry.id));
    return {
      admitted: true,
      revision,
      ...(stored === undefined ? {} : { certificate: certificateMessage(stored) }),
    };
  }

  return async function verifyCertificate(req, ctx) {
    switch (req.subject.case) {
      case "certificate": {
        const upload = parseUpload(req.subject.value, maxUploadBytes);
        if (upload.kind === "invalid") {
          return { admitted: false, reason: "invalid_certificate", revision: BigInt(journal.head) };
        }
        if (upload.kind !== "certificate") {
          throw uploadError(upload);
        }
        return verify(upload.certificate, ctx.signal);
      }
      case "thumbprint": {
        let thumbprint: string;
        try {
          thumbprint = normalizeThumbprint(req.subject.value);
        } catch (error) {
          if (containsPrivateKeyText(req.subject.value)) {
            throw privateKeyError();
          }
          throw new ConnectError((error as Error).message, Code.InvalidArgument);
        }
        const stored = await readStore(() => thumbprints.find(thumbprint));
        if (stored === undefined) {
          return { admitted: false, reason: "not_allowed", revision: BigInt(journal.head) };
        }
        const upload = parseUpload(stored.der, Infinity);
        if (upload.kind !== "certificate") {
          return { admitted: false, reason: "invalid_certificate", revision: BigInt(journal.head) };
        }
        return verify(upload.certificate, ctx.signal);
      }
      default:
        throw new ConnectError("give a certificate or a thumbprint to verify", Code.InvalidArgument);
    }
  };
}
