import { Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { CertificateStoreService } from "../gen/certgate/v1/certificate_store_pb.js";
import { createAccessGate } from "./access.js";
import { createExpiryFilter } from "./expiring.js";
import { certificateMessage } from "./convert.js";
import { isValidEntryId } from "./page-token.js";
import { createStoredThumbprints } from "./stored-thumbprints.js";
import { defaultMaxUploadBytes } from "./upload.js";
import { createSharedJournal } from "./shared-journal.js";
import { createWatchJournal } from "./watch-journal.js";
import { createWatchLimits } from "./watch-limits.js";
import { clockOf, positiveInteger } from "../core/options.js";
import { defaultLabelLimits } from "../core/labels.js";
import { createDecisionCore } from "../decision/decision.js";
import { createServiceAudit } from "./audit-trail.js";
import { createBatchHandler } from "./create-batch.js";
import type { CertificateStoreServiceOptions } from "./certificate-store-service-options.js";
import { createListHandler } from "./list-certificates.js";
import { readStore } from "./read-store.js";
import { createVerifyHandler } from "./verify-certificate.js";
import { createWatchHandler } from "./watch-certificates.js";
import { grpcWatchRequestHandler, type GrpcWatchHandlerOptions } from "./grpc-watch-handler.js";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { checkId, createWriteHandlers } from "./write-handlers.js";

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
  /**
   * Wraps the Node HTTP/2 request listener that serves `routes` (the Connect
   * adapter) so that WatchCertificates over gRPC with binary messages, what
   * mirrors use, is written to the stream directly, with the same gate,
   * implementation and error trailers: see `grpcWatchRequestHandler`.
   * `createCertificateStoreServer` uses it; other requests go to `next`.
   */
  directWatch(
    next: (req: Http2ServerRequest, res: Http2ServerResponse) => void,
    options: Pick<GrpcWatchHandlerOptions, "contextValues" | "shutdownSignal">,
  ): (req: Http2ServerRequest, res: Http2ServerResponse) => void;
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

  const verifyCertificate = createVerifyHandler({ store, journal, thumbprints, verifyCore, now, maxUploadBytes });
  const listCertificates = createListHandler({ store, expiring });
  const writes = createWriteHandlers({ store, audit, auditLog, maxUploadBytes, labelLimits });
  const watchCertificates = createWatchHandler({
    store,
    journal,
    sharedLog,
    limits,
    partSize,
    heartbeatIntervalMs,
    recheck: gate.recheck,
  });

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
        createCertificate: writes.createCertificate,
        async getCertificate(req) {
          // Entry ids: ListCertificates names a bundle's members `id#n`.
          checkId(req.certificateId, isValidEntryId);
          const stored = await readStore(() => store.get(req.certificateId));
          if (stored === undefined) {
            throw new ConnectError(`certificate ${req.certificateId} not found`, Code.NotFound);
          }
          return { certificate: certificateMessage(stored) };
        },
        deleteCertificate: writes.deleteCertificate,
        listAuditEvents(req) {
          return audit.listPage(req);
        },
        listCertificates,
        verifyCertificate,
        watchCertificates,
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
    directWatch: (next, { contextValues, shutdownSignal }) =>
      grpcWatchRequestHandler(next, {
        watch: watchCertificates,
        requestGate: gate.requestGate,
        readMaxBytes,
        contextValues,
        shutdownSignal,
      }),
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
