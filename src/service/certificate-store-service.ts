import { Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import type { Certificate } from "../core/certificate.js";
import { normalizeThumbprint } from "../core/thumbprint.js";
import {
  isValidCertificateId,
  type StoreVerdict,
  type StoredCertificate,
  type WritableCertificateStore,
} from "../core/store.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  CertificateStoreService,
  type VerifyCertificateResponseSchema,
} from "../gen/certgate/v1/certificate_store_pb.js";
import { createAccessGate, type AccessOptions } from "./access.js";
import { createExpiryFilter, timestampMillis } from "./expiring.js";
import { certificateMessage } from "./convert.js";
import { decodePageToken, encodePageToken, isValidEntryId } from "./page-token.js";
import { createStoredThumbprints } from "./stored-thumbprints.js";
import { checkUploadLabels, defaultMaxUploadBytes, parseUpload, privateKeyError, uploadError } from "./upload.js";
import { createSharedJournal } from "./shared-journal.js";
import { createWatchJournal } from "./watch-journal.js";
import { createWatchLimits } from "./watch-limits.js";
import { watchStream } from "./watch-stream.js";
import { clockOf, positiveInteger } from "../core/options.js";
import { defaultLabelLimits } from "../core/labels.js";
import { containsPrivateKeyText } from "../core/pem-der.js";
import type { AuditLog } from "../core/audit.js";
import { createDecisionCore } from "../decision/decision.js";
import type { PolicyOptions } from "../policy/policy-options.js";
import { createServiceAudit } from "./audit-trail.js";
import { createBatchHandler } from "./create-batch.js";

/**
 * CertificateStoreServiceOptions configures `createCertificateStoreService`.
 */
export interface CertificateStoreServiceOptions {
  /** The store that keeps the certificates, such as a directory store. Required. */
  store: WritableCertificateStore;
  /** Which client certificates may call what. Required: the service is never open. */
  access: AccessOptions;
  /**
   * The largest certificate upload (the `certificate` field of Create and
   * Verify), in bytes. Requests are not read beyond about this size (plus
   * room for labels and the JSON encoding). By default, 64 KiB.
   */
  maxUploadBytes?: number;
  /**
   * The largest CreateCertificates request (up to 1000 certificates), in
   * bytes; each certificate is still held to `maxUploadBytes`. Only admins
   * get this far: the access gate decides before the request is read. By
   * default, 16 MiB.
   */
  maxBatchBytes?: number;
  /** At most this many labels per certificate, up to 64 (the stores' limit). By default, 64. */
  maxLabels?: number;
  /** At most this many characters per label value, up to 256 (the stores' limit). By default, 256. */
  maxLabelValueLength?: number;
  /**
   * How many recent changes to remember so that a watcher can resume after a
   * reconnect without a new snapshot. By default, 4096.
   */
  watchJournalSize?: number;
  /**
   * The most changed certificates one journal entry may hold: a larger
   * change (a folder replaced with 100k files) makes every watcher take a new
   * snapshot instead, read page by page as it is sent. The same for a
   * shared store's revision (a replica's full copy after a long disconnect).
   * By default, 1000.
   */
  watchMaxEntryChanges?: number;
  /** At most this many certificates per snapshot or change event. By default, 500. */
  watchPartSize?: number;
  /**
   * A heartbeat on every watch after this long without an event, in ms:
   * what tells a mirror that this replica still answers (a mirror leaves a
   * watch silent for its `idleTimeoutMs`, by default 3000). By default, 1000.
   */
  watchHeartbeatMs?: number;
  /**
   * At most this many open WatchCertificates calls per connection; more are
   * refused with `Code.ResourceExhausted`. A client needs one. By default, 16.
   */
  maxWatchesPerConnection?: number;
  /**
   * At most this many open WatchCertificates calls in all; more are refused
   * with `Code.ResourceExhausted`. A paused watch holds at most one snapshot
   * part in memory. By default, 1024.
   */
  maxWatches?: number;
  /**
   * The current time, for the validity checks of VerifyCertificate (and of
   * client certificates unless `access.clock` is set). By default, `Date.now`.
   */
  clock?: () => number | Date;
  /**
   * The validation policy VerifyCertificate applies on top of the store, as
   * the interceptors take it (`PolicyOptions`): `validateTrust: { ca }`,
   * `validateRevocation` (CRL files, `ocsp`, `crlDistributionPoints`),
   * `identities`, ... A certificate is verified as if it came on a TLS
   * connection whose chain Node did not verify (`validateTrust: "tls"`
   * refuses everything here: give `{ ca }`). By default, none: the store
   * and the validity window alone.
   */
  verifyPolicy?: PolicyOptions;
  /**
   * Where to keep the audit trail of creates, deletes and refused or failed
   * attempts, served by ListAuditEvents; `false` keeps none (ListAuditEvents
   * answers `Unimplemented`). By default, the store's own `audit` log (the
   * folder store's file, the PostgreSQL store's table), if it has one.
   */
  audit?: AuditLog | false;
  /**
   * At most this many calls refused by the access gate (a reader or an
   * unknown certificate calling Create or Delete) are recorded per minute;
   * the rest are counted in one `suppressed` record. By default, 60.
   */
  auditRefusalsPerMinute?: number;
  /**
   * Called when the record of a refused or failed attempt could not be
   * written (the call fails as it would have anyway). By default, a process
   * warning.
   */
  onAuditError?: (error: unknown) => void;
}

/**
 * CertificateStoreServiceHandler is a running certificate store service:
 * register it with `routes` on a Connect router.
 */
export interface CertificateStoreServiceHandler {
  /**
   * Registers `certgate.v1.CertificateStoreService` with its access gate and
   * read limit. The adapter must be given `peerCertificateContextValues` as
   * its `contextValues`, and run on a TLS server that asks for client
   * certificates (`requestCert: true`).
   */
  routes(router: ConnectRouter): void;
  /**
   * The service's access gate as a Connect `requestGate`, to put more
   * read-only services behind the same admin and reader lists (such as
   * `createReflectionService({ requestGate })`): it admits readers and
   * admins, and refuses as it refuses store calls.
   */
  readonly requestGate: (context: HandlerContext) => Promise<void>;
  /**
   * Decides again for a call that is already running (quietly when it
   * admits), throwing the refusal: for long-lived calls of such services,
   * as the service does on its own watches.
   */
  readonly recheck: (context: HandlerContext) => Promise<void>;
  /** The epoch of this instance's revisions (see WatchCertificates). */
  readonly epoch: string;
  /**
   * How many WatchCertificates calls are open now: each one ends, and stops
   * counting, when its client cancels it or its connection goes away.
   */
  readonly openWatches: number;
  /** Ends every watch and stops following the store; does not close the store. */
  close(): Promise<void>;
}

const mutating = new Set(["CreateCertificate", "CreateCertificates", "DeleteCertificate"]);
const auditWarning = (error: unknown) =>
  process.emitWarning(
    `certgate: an audit record could not be written: ${error instanceof Error ? error.message : String(error)}`,
    {
      code: "CERTGATE_AUDIT_FAILED",
    },
  );
const defaultPageSize = 100;
const maxPageSize = 1000;

/**
 * createCertificateStoreService serves a `WritableCertificateStore` as
 * `certgate.v1.CertificateStoreService`, protected by certgate itself: Create
 * and Delete need an admin client certificate, the other RPCs a reader or
 * admin certificate (see `AccessOptions`).
 *
 * Uploads must be exactly one public certificate (PEM or DER): a private key
 * anywhere in the request is refused with `InvalidArgument` and nothing of
 * the request is kept. A certificate is acknowledged only once the store's
 * `put` resolved, that is once it is durable.
 *
 * @example
 * const service = createCertificateStoreService({
 *   store: createMemoryStore(),
 *   access: { admin: { thumbprints: [adminThumbprint] } },
 * });
 * http2.createSecureServer(
 *   { cert, key, requestCert: true, rejectUnauthorized: false },
 *   connectNodeAdapter({ routes: service.routes, contextValues: peerCertificateContextValues }),
 * );
 */
export function createCertificateStoreService(options: CertificateStoreServiceOptions): CertificateStoreServiceHandler {
  const { store } = options;
  if (store === undefined || typeof store.put !== "function" || typeof store.onChanges !== "function") {
    throw new TypeError("certificate store service: options.store must be a WritableCertificateStore");
  }
  if (options.access === undefined) {
    throw new TypeError("certificate store service: options.access is required (admin and/or reader certificates)");
  }
  const maxUploadBytes = positiveInteger(
    "certificate store service: maxUploadBytes",
    options.maxUploadBytes,
    defaultMaxUploadBytes,
  );
  const labelLimits = {
    maxLabels: positiveInteger("certificate store service: maxLabels", options.maxLabels, defaultLabelLimits.maxLabels),
    maxValueLength: positiveInteger(
      "certificate store service: maxLabelValueLength",
      options.maxLabelValueLength,
      defaultLabelLimits.maxValueLength,
    ),
  };
  // The stores keep at most the default limits: the service may only tighten them.
  if (
    labelLimits.maxLabels > defaultLabelLimits.maxLabels ||
    labelLimits.maxValueLength > defaultLabelLimits.maxValueLength
  ) {
    throw new TypeError(
      `certificate store service: maxLabels and maxLabelValueLength may be at most ${defaultLabelLimits.maxLabels} and ${defaultLabelLimits.maxValueLength}, the stores' limits`,
    );
  }
  const partSize = positiveInteger("certificate store service: watchPartSize", options.watchPartSize, 500);
  const heartbeatIntervalMs = positiveInteger(
    "certificate store service: watchHeartbeatMs",
    options.watchHeartbeatMs,
    1000,
  );
  const now = clockOf(options.clock);
  // Built once: its caches (decisions per certificate, OCSP and CRL status)
  // serve every VerifyCertificate call.
  const verifyCore =
    options.verifyPolicy === undefined
      ? undefined
      : createDecisionCore({
          ...options.verifyPolicy,
          store,
          ...(options.clock === undefined ? {} : { clock: options.clock }),
        });
  if (
    options.audit !== undefined &&
    options.audit !== false &&
    (typeof options.audit.record !== "function" || typeof options.audit.list !== "function")
  ) {
    throw new TypeError("certificate store service: options.audit must be an AuditLog or false");
  }
  const auditLog = options.audit === false ? undefined : (options.audit ?? store.audit);
  const audit = createServiceAudit({
    log: auditLog,
    storeRecords: auditLog !== undefined && auditLog === store.audit,
    now,
    refusalsPerMinute: positiveInteger(
      "certificate store service: auditRefusalsPerMinute",
      options.auditRefusalsPerMinute,
      60,
      0,
    ),
    onError: options.onAuditError ?? auditWarning,
  });
  const userOnDecision = options.access.onDecision;
  const gate = createAccessGate(
    {
      ...options.access,
      clock: options.access.clock ?? options.clock,
      onDecision(event) {
        audit.onDecision(event);
        userOnDecision?.(event);
      },
    },
    (method) => mutating.has(method),
  );
  const journalSize = positiveInteger("certificate store service: watchJournalSize", options.watchJournalSize, 4096);
  // A store shared by several replicas numbers its own revisions, the same
  // on every replica, so that a watch resumes on any of them.
  const sharedLog = store.sharedLog;
  const maxEntryChanges = positiveInteger(
    "certificate store service: watchMaxEntryChanges",
    options.watchMaxEntryChanges,
    1000,
  );
  const journal =
    sharedLog === undefined
      ? createWatchJournal({ store, maxChanges: journalSize, maxEntryChanges })
      : createSharedJournal(sharedLog, journalSize, maxEntryChanges);
  const thumbprints = createStoredThumbprints(store, journal);
  const expiring = createExpiryFilter({ store });
  const limits = createWatchLimits(
    "watches",
    positiveInteger("certificate store service: maxWatchesPerConnection", options.maxWatchesPerConnection, 16),
    positiveInteger("certificate store service: maxWatches", options.maxWatches, 1024),
  );
  // Room for the id, labels and the base64 of the JSON encoding, so that a
  // request is cut off soon after the upload limit instead of buffered whole.
  const readMaxBytes = Math.ceil((maxUploadBytes * 4) / 3) + 64 * 1024;
  const batchReadMaxBytes = positiveInteger(
    "certificate store service: maxBatchBytes",
    options.maxBatchBytes,
    16 * 1024 * 1024,
  );
  const createCertificates = createBatchHandler({
    store,
    audit,
    auditLog,
    storeRecords: auditLog !== undefined && auditLog === store.audit,
    maxUploadBytes,
    labelLimits,
    now,
  });

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

  function implementation(router: ConnectRouter): void {
    // CreateCertificates reads a larger request than the other methods: it
    // is registered on its own, with its own read limit.
    router.rpc(CertificateStoreService.method.createCertificates, createCertificates, {
      requestGate: gate.requestGate,
      readMaxBytes: Math.max(readMaxBytes, batchReadMaxBytes),
    });
    router.service(
      withoutBatch,
      {
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
        async getCertificate(req) {
          // Entry ids: ListCertificates names a bundle's members `id#n`.
          checkId(req.certificateId, isValidEntryId);
          const stored = await readStore(() => store.get(req.certificateId));
          if (stored === undefined) {
            throw new ConnectError(`certificate ${req.certificateId} not found`, Code.NotFound);
          }
          return { certificate: certificateMessage(stored) };
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
        listAuditEvents(req) {
          return audit.listPage(req);
        },
        async listCertificates(req) {
          if (req.pageSize < 0) {
            throw new ConnectError("page_size must not be negative", Code.InvalidArgument);
          }
          const size = req.pageSize === 0 ? defaultPageSize : Math.min(req.pageSize, maxPageSize);
          const after = req.pageToken === "" ? undefined : decodePageToken(req.pageToken);
          const labels = Object.keys(req.labels).length === 0 ? undefined : { ...req.labels };
          if (req.expiresBefore !== undefined || labels !== undefined) {
            const before =
              req.expiresBefore === undefined ? undefined : timestampMillis("expires_before", req.expiresBefore);
            const page = await readStore(() => expiring.page({ after, size, before, labels }));
            return {
              certificates: page.certificates.map((stored) => certificateMessage(stored)),
              nextPageToken: page.nextAfter === undefined ? "" : encodePageToken(page.nextAfter),
            };
          }
          const page = await readStore(() => store.list({ after, limit: size + 1 }));
          const more = page.length > size;
          const shown = more ? page.slice(0, size) : page;
          return {
            certificates: shown.map((stored) => certificateMessage(stored)),
            nextPageToken: more ? encodePageToken((shown[shown.length - 1] as StoredCertificate).id) : "",
          };
        },
        async verifyCertificate(req, ctx: HandlerContext) {
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
        },
        async *watchCertificates(req, ctx) {
          const watch = limits.start(ctx);
          // A replica cut off from its shared store ends its watches, so
          // that mirrors move to another replica instead of trusting this
          // one's heartbeats.
          let cutOff = sharedLog?.state === "unavailable";
          const offState = sharedLog?.onState((state) => {
            if (state === "unavailable") {
              cutOff = true;
              watch.abort();
            }
          });
          if (offState !== undefined) watch.onForget(offState);
          try {
            // The gate admitted the call: a reset (HEADERS + RST_STREAM)
            // that arrived with the request is seen here, before any read.
            await new Promise((resolve) => setImmediate(resolve));
            if (!cutOff) {
              for await (const event of watchStream(req, watch.signal, {
                store,
                journal,
                partSize,
                heartbeatIntervalMs,
              })) {
                // A watch outlives the gate's decision: a reader removed from
                // the list, or whose certificate expired, hears no more.
                await gate.recheck(ctx);
                if (cutOff || sharedLog?.state === "unavailable") break;
                yield event;
              }
            }
            if (cutOff || sharedLog?.state === "unavailable") {
              throw new ConnectError("certificate store unavailable: the database is unreachable", Code.Unavailable);
            }
          } finally {
            watch.forget();
          }
        },
      },
      // Responses are not compressed: thumbprints, ids and DER gain little
      // from gzip, and a replica would pay it once per watcher for every
      // snapshot and change (most of its CPU when 500 API servers watch).
      // Compressed requests are still accepted.
      { requestGate: gate.requestGate, readMaxBytes, compressMinBytes: Number.MAX_SAFE_INTEGER },
    );
  }

  return {
    routes: implementation,
    requestGate: gate.requestGate,
    recheck: gate.recheck,
    epoch: journal.epoch,
    get openWatches() {
      return limits.open;
    },
    async close() {
      limits.abortAll();
      thumbprints.close();
      journal.close();
      await gate.close();
      await audit.close();
    },
  };
}

// The service without CreateCertificates, which `routes` registers apart.
const withoutBatch: typeof CertificateStoreService = {
  ...CertificateStoreService,
  methods: CertificateStoreService.methods.filter((m) => m.name !== "CreateCertificates"),
};

function checkId(id: string, valid: (id: string) => boolean = isValidCertificateId): void {
  if (!valid(id)) {
    throw new ConnectError(
      `invalid certificate id ${JSON.stringify(id.slice(0, 140))}: letters, digits, ".", "_" and "-", 1 to 128, not starting with "."`,
      Code.InvalidArgument,
    );
  }
}

// Store errors that are not ConnectErrors (a disk failure) become Internal,
// with the cause kept for logs but not shown to the client.
async function readStore<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    if (error instanceof ConnectError) {
      throw error;
    }
    throw new ConnectError("certificate store failed", Code.Internal, undefined, undefined, error);
  }
}
