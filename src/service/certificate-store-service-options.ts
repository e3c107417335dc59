import type { WritableCertificateStore } from "../core/store.js";
import type { AuditLog } from "../core/audit.js";
import type { PolicyOptions } from "../policy/policy-options.js";
import type { AccessOptions } from "./access.js";

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
