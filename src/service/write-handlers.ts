import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { AuditLog } from "../core/audit.js";
import type { LabelLimits } from "../core/labels.js";
import { isValidCertificateId, type WritableCertificateStore } from "../core/store.js";
import type {
  CreateCertificateRequest,
  CreateCertificateResponseSchema,
  DeleteCertificateRequest,
  DeleteCertificateResponseSchema,
} from "../gen/certgate/v1/certificate_store_pb.js";
import type { ServiceAudit } from "./audit-trail.js";
import { certificateMessage } from "./convert.js";
import { isValidEntryId } from "./page-token.js";
import { readStore } from "./read-store.js";
import { checkUploadLabels, parseUpload, uploadError } from "./upload.js";

/**
 * WriteHandlersOptions configures `createWriteHandlers`.
 */
export interface WriteHandlersOptions {
  /** The store written to. */
  readonly store: WritableCertificateStore;
  /** The service's audit trail. */
  readonly audit: ServiceAudit;
  /** The audit log the service writes to, if any. */
  readonly auditLog: AuditLog | undefined;
  /** The largest certificate upload, in bytes. */
  readonly maxUploadBytes: number;
  /** The limits on an upload's labels. */
  readonly labelLimits: LabelLimits;
}

/**
 * WriteHandlers answer CreateCertificate and DeleteCertificate.
 */
export interface WriteHandlers {
  createCertificate(
    req: CreateCertificateRequest,
    ctx: HandlerContext,
  ): Promise<MessageInitShape<typeof CreateCertificateResponseSchema>>;
  deleteCertificate(
    req: DeleteCertificateRequest,
    ctx: HandlerContext,
  ): Promise<MessageInitShape<typeof DeleteCertificateResponseSchema>>;
}

/**
 * createWriteHandlers answers CreateCertificate and DeleteCertificate, each
 * acknowledged once the store's write resolved, with its audit record.
 */
export function createWriteHandlers(options: WriteHandlersOptions): WriteHandlers {
  const { store, audit, auditLog, maxUploadBytes, labelLimits } = options;
  return {
    async createCertificate(req, ctx) {
      let id = req.certificateId;
      let sha256 = "";
      let done = false;
      try {
        const upload = parseUpload(req.certificate, maxUploadBytes);
        if (upload.kind !== "certificate") {
          throw uploadError(upload);
        }
        const certificate = upload.certificate;
        sha256 = certificate.sha256;
        checkUploadLabels(req.labels, labelLimits);
        id = req.certificateId === "" ? certificate.sha256 : req.certificateId;
        checkId(id);
        // Answer only once the store's put (and its audit record)
        // resolved: an acknowledged certificate is durable.
        const stored = await readStore(() =>
          store.put(id, certificate.der, { labels: { ...req.labels }, ...audit.forStore(ctx) }),
        );
        done = true;
        await readStore(() => audit.written("create", ctx, stored.id, stored.sha256));
        return { certificate: certificateMessage(stored, certificate) };
      } catch (error) {
        // A stored certificate whose record failed is no failed attempt.
        if (!done) await audit.attemptFailed("create", ctx, id, sha256, error);
        throw error;
      }
    },
    async deleteCertificate(req, ctx) {
      let done = false;
      try {
        // The store says why a bundle's member cannot be deleted alone.
        checkId(req.certificateId, isValidEntryId);
        const forStore = audit.forStore(ctx);
        // A log of its own (not the store's) records the thumbprint read first.
        const before =
          forStore.actor === undefined && auditLog !== undefined
            ? await store.get(req.certificateId).catch(() => undefined)
            : undefined;
        await readStore(() => store.delete(req.certificateId, forStore));
        done = true;
        await readStore(() => audit.written("delete", ctx, req.certificateId, before?.sha256 ?? ""));
        return {};
      } catch (error) {
        if (!done) await audit.attemptFailed("delete", ctx, req.certificateId, "", error);
        throw error;
      }
    },
  };
}

/**
 * checkId throws `InvalidArgument` for an id that `valid` (by default
 * `isValidCertificateId`) refuses.
 */
export function checkId(id: string, valid: (id: string) => boolean = isValidCertificateId): void {
  if (!valid(id)) {
    throw new ConnectError(
      `invalid certificate id ${JSON.stringify(id.slice(0, 140))}: letters, digits, ".", "_" and "-", 1 to 128, not starting with "."`,
      Code.InvalidArgument,
    );
  }
}
