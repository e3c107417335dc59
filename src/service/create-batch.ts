import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  isValidCertificateId,
  type PutEntry,
  type StoredCertificate,
  type WritableCertificateStore,
} from "../core/store.js";
import type { LabelLimits } from "../core/labels.js";
import {
  CertificateBatchErrorSchema,
  type CreateCertificatesRequest,
  type CreateCertificatesResponseSchema,
} from "../gen/certgate/v1/certificate_store_pb.js";
import { watchCertificateMessage } from "./convert.js";
import { checkUploadLabels, parseBatchUpload, uploadError } from "./upload.js";
import type { ServiceAudit } from "./audit-trail.js";
import type { AuditLog } from "../core/audit.js";

/**
 * maxBatchSize is the most certificates one CreateCertificates call may carry.
 */
export const maxBatchSize = 1000;

/**
 * CreateBatchOptions configures `createBatchHandler`.
 */
export interface CreateBatchOptions {
  readonly store: WritableCertificateStore;
  readonly audit: ServiceAudit;
  /** The audit log the service writes to, if any. */
  readonly auditLog: AuditLog | undefined;
  /** Whether `auditLog` is the store's own (the store records its writes). */
  readonly storeRecords: boolean;
  readonly maxUploadBytes: number;
  readonly labelLimits: LabelLimits;
  readonly now: () => number;
}

/** BatchItemError names one refused item of a batch. */
interface BatchItemError {
  index: number;
  certificateId: string;
  code: string;
  reason: string;
}

/**
 * createBatchHandler answers CreateCertificates: every item is checked as
 * CreateCertificate checks one (parse, private key, labels, id) before
 * anything is written, and the whole batch is refused, each refused item
 * named in a `CertificateBatchError` detail, when any item is. A store with
 * `putAll` (PostgreSQL) writes the batch in one transaction; any other store
 * (the folder and memory stores) gets the ids checked first, then one `put`
 * per certificate, and the ones already written are deleted again if a
 * later one fails, so that the call stores all or nothing.
 */
export function createBatchHandler(options: CreateBatchOptions) {
  const { store, audit, auditLog, storeRecords } = options;

  return async function createCertificates(
    req: CreateCertificatesRequest,
    ctx: HandlerContext,
  ): Promise<MessageInitShape<typeof CreateCertificatesResponseSchema>> {
    let done = false;
    try {
      const count = req.requests.length;
      if (count === 0 || count > maxBatchSize) {
        throw new ConnectError(`give 1 to ${maxBatchSize} certificates, got ${count}`, Code.InvalidArgument);
      }
      const refused: BatchItemError[] = [];
      const entries: (PutEntry & { sha256: string })[] = [];
      const seen = new Set<string>();
      req.requests.forEach((item, index) => {
        let id = item.certificateId;
        try {
          const upload = parseBatchUpload(item.certificate, options.maxUploadBytes);
          if (upload.kind !== "certificate") throw uploadError(upload);
          checkUploadLabels(item.labels, options.labelLimits);
          id = id === "" ? upload.sha256 : id;
          if (!isValidCertificateId(id)) {
            throw new ConnectError(`invalid certificate id ${JSON.stringify(id.slice(0, 140))}`, Code.InvalidArgument);
          }
          if (seen.has(id))
            throw new ConnectError(`certificate id ${JSON.stringify(id)} given twice`, Code.InvalidArgument);
          seen.add(id);
          entries.push({
            id,
            der: upload.der,
            labels: { ...item.labels },
            sha256: upload.sha256,
          });
        } catch (error) {
          refused.push(itemError(index, isValidCertificateId(id) ? id : "", error));
        }
      });
      if (refused.length > 0) throw batchError(refused);
      const forStore = audit.forStore(ctx);
      let stored: readonly StoredCertificate[];
      let batchRecorded = false;
      if (store.putAll !== undefined) {
        const putAll = store.putAll.bind(store);
        const result = await guard(() => putAll(entries, forStore));
        if (result.kind === "refused") {
          throw batchError(
            result.items.map((item) => ({
              index: item.index,
              certificateId: item.id,
              code: /already exists/.test(item.reason) ? "already_exists" : "invalid_argument",
              reason: item.reason,
            })),
          );
        }
        stored = result.certificates;
        batchRecorded = forStore.actor !== undefined;
      } else {
        stored = await putOneByOne(store, entries, forStore);
      }
      done = true;
      if (!storeRecords) {
        for (const s of stored) await guard(() => audit.written("create", ctx, s.id, s.sha256));
      }
      if (!batchRecorded && auditLog !== undefined) {
        await guard(() => audit.batchWritten(ctx, stored.length));
      }
      return { certificates: stored.map((s) => watchCertificateMessage(s, false)) };
    } catch (error) {
      if (!done) await audit.attemptFailed("create_batch", ctx, "", "", error);
      throw error;
    }
  };
}

// The one-by-one fallback: ids checked first, then `put` each, undoing the
// writes made when one fails (a write racing this call for the same id, a
// full disk).
async function putOneByOne(
  store: WritableCertificateStore,
  entries: readonly (PutEntry & { sha256: string })[],
  forStore: ReturnType<ServiceAudit["forStore"]>,
): Promise<StoredCertificate[]> {
  const taken: BatchItemError[] = [];
  for (const [index, entry] of entries.entries()) {
    if ((await guard(() => store.get(entry.id))) !== undefined) {
      taken.push({
        index,
        certificateId: entry.id,
        code: "already_exists",
        reason: `certificate ${JSON.stringify(entry.id)} already exists`,
      });
    }
  }
  if (taken.length > 0) throw batchError(taken);
  const stored: StoredCertificate[] = [];
  for (const [index, entry] of entries.entries()) {
    try {
      stored.push(await guard(() => store.put(entry.id, entry.der, { labels: entry.labels ?? {}, ...forStore })));
    } catch (error) {
      for (const s of stored.reverse()) await store.delete(s.id, forStore).catch(() => undefined);
      const connect = ConnectError.from(error);
      if (connect.code === Code.AlreadyExists || connect.code === Code.InvalidArgument) {
        throw batchError([itemError(index, entry.id, error)]);
      }
      throw error;
    }
  }
  return stored;
}

function itemError(index: number, certificateId: string, error: unknown): BatchItemError {
  const connect = ConnectError.from(error);
  return {
    index,
    certificateId,
    code: snakeCase(Code[connect.code] ?? "unknown"),
    reason: connect.rawMessage.slice(0, 1024),
  };
}

// The batch's error: AlreadyExists when every refused item is a taken id
// (what a resumed import expects), else InvalidArgument; each item named in
// the detail and, for people, in the message.
function batchError(items: readonly BatchItemError[]): ConnectError {
  const allTaken = items.every((item) => item.code === "already_exists");
  const first = items[0];
  const message = `${items.length} certificate${items.length === 1 ? "" : "s"} of the batch refused, nothing was stored${
    first === undefined ? "" : `; item ${first.index}: ${first.reason}`
  }`;
  return new ConnectError(message, allTaken ? Code.AlreadyExists : Code.InvalidArgument, undefined, [
    { desc: CertificateBatchErrorSchema, value: { items: [...items] } },
  ]);
}

function snakeCase(name: string): string {
  return name.replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}

// Store errors that are not ConnectErrors become Internal, the cause kept for logs.
async function guard<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    if (error instanceof ConnectError) throw error;
    throw new ConnectError("certificate store failed", Code.Internal, undefined, undefined, error);
  }
}
