import type { Transport } from "@connectrpc/connect";
import type { CertificateStore, StoredCertificate } from "../../core/store.js";
import type { StoreMetricsOptions } from "../../core/metrics.js";
import type { ClientCertTransportOptions } from "../../client/client-cert-transport.js";

/**
 * RemoteStoreMode says how a remote store learns what the service admits:
 * `mirror` keeps a local copy fed by WatchCertificates, `lookup` asks
 * VerifyCertificate and caches the answers.
 */
export type RemoteStoreMode = "mirror" | "lookup";

/**
 * RemoteStoreClientCert is the `clientCert` option of `createRemoteStore`:
 * `createClientCertTransport` options with one `baseUrl` or several
 * `baseUrls`, by default with the gRPC protocol.
 */
export type RemoteStoreClientCert = Omit<ClientCertTransportOptions, "baseUrl"> &
  ({ baseUrl: string; baseUrls?: undefined } | { baseUrls: readonly string[]; baseUrl?: undefined });

/**
 * RemoteStoreOptions configures `createRemoteStore`.
 */
export interface RemoteStoreOptions extends StoreMetricsOptions {
  /**
   * The Connect transport to the certificate store service, with the TLS
   * client certificate (reader or admin) and CA of your choosing, such as
   * `createGrpcTransport({ baseUrl, nodeOptions: { cert, key, ca } })`.
   * Give exactly one of `transport` and `transports`.
   */
  transport?: Transport;
  /**
   * Transports to several replicas of the certificate store service on one
   * shared store (`certgate serve --database`), in order of preference. The
   * store follows one; when it loses it, it moves to the next at once and
   * resumes from its last revision (the replicas share revisions), so no
   * snapshot is needed and no change is missed. Lookup mode asks the next
   * one when a call fails. Give exactly one of `transport` and `transports`.
   */
  transports?: readonly Transport[];
  /**
   * Instead of `transport` or `transports`: the service's URL (or several
   * replicas' `baseUrls`) and this store's own client certificate, key and
   * CA as files, followed on disk with `createClientCertTransport`, so that
   * a renewed client certificate is presented on the next connection
   * without a restart. The store closes these transports when it closes.
   */
  clientCert?: RemoteStoreClientCert;
  /** How to learn what the service admits. By default, `"mirror"`. */
  mode?: RemoteStoreMode;
  /**
   * How long lookups wait for the first complete snapshot (mirror mode)
   * before they fail closed, in milliseconds. By default, 3000: under the
   * decision core's own 5000 ms, so that the refusal says why.
   */
  syncTimeoutMs?: number;
  /**
   * How long, after the service became unreachable, lookups keep answering
   * from the last synchronised set (mirror mode) or from expired cached
   * answers (lookup mode), in milliseconds. Like HTTP's `max-stale`, it
   * trades freshness for availability: a certificate deleted meanwhile is
   * admitted until the service is back or the time is up. By default, 0:
   * every lookup fails closed as soon as the service cannot be reached.
   */
  maxStaleMs?: number;
  /** The first reconnection delay, in milliseconds; it doubles on each failure. By default, 100. */
  reconnectDelayMs?: number;
  /** The longest reconnection delay, in milliseconds. By default, 5000. */
  maxReconnectDelayMs?: number;
  /**
   * A watch that has heard nothing (not even a heartbeat) for this long is
   * taken as broken and reconnected (to the next replica, when there are
   * several), in milliseconds; 0 turns the check off. It is how a mirror
   * leaves a replica that froze or was cut off without a reset. By default,
   * 3000: three of the service's heartbeats (one a second). Against a
   * service with slower heartbeats (`watchHeartbeatMs`), set it above theirs.
   */
  idleTimeoutMs?: number;
  /** How long an admitted answer is reused (lookup mode), in milliseconds. By default, 10000. */
  cacheTtlMs?: number;
  /** How long a refusal is reused (lookup mode), in milliseconds. By default, 2000. */
  negativeCacheTtlMs?: number;
  /** At most this many cached answers (lookup mode); the oldest go first. By default, 10000. */
  cacheMaxEntries?: number;
  /**
   * How long one VerifyCertificate call (lookup mode) or one GetCertificate
   * call of `getCertificate` (both modes) may take, in milliseconds. By
   * default, 3000.
   */
  requestTimeoutMs?: number;
  /**
   * The current time, as epoch milliseconds or a Date, for the stale window
   * and the cache. Verdicts' `expiresAt` are in this clock, so give the
   * interceptor the same one. By default, `Date.now`.
   */
  clock?: () => number | Date;
  /**
   * Called when the mirror is in sync or loses the service, for logs.
   * By default, nothing is called. Errors it throws are ignored.
   */
  onEvent?: (event: RemoteStoreEvent) => void;
}

/**
 * RemoteStoreEvent is what `onEvent` hears.
 */
export type RemoteStoreEvent =
  | {
      readonly kind: "synced";
      /** How the copy was brought up to date: a full snapshot or a resume. */
      readonly via: "snapshot" | "resume";
      /** The service's revision and epoch the copy is at. */
      readonly revision: bigint;
      readonly epoch: string;
      /** How many certificates the copy holds. */
      readonly size: number;
      /** Which of `transports` (0 with `transport`) it is following. */
      readonly transportIndex: number;
    }
  | {
      readonly kind: "disconnected";
      /** Why the watch ended. */
      readonly error: unknown;
      /** When the next attempt starts, in milliseconds. */
      readonly retryInMs: number;
      /** Which of `transports` (0 with `transport`) was lost. */
      readonly transportIndex: number;
    };

/**
 * RemoteStoreState is the state of a remote store: `connecting` until the
 * first sync, `synced`, `stale` (serving the last set within `maxStaleMs`),
 * `unavailable` (failing closed), `closed`. Lookup mode is always `synced`
 * until closed.
 */
export type RemoteStoreState = "connecting" | "synced" | "stale" | "unavailable" | "closed";

/**
 * RemoteStore is a `CertificateStore` backed by the certificate store service.
 */
export interface RemoteStore extends CertificateStore {
  /** How it learns what the service admits. */
  readonly mode: RemoteStoreMode;
  /** Where it stands (see `RemoteStoreState`). */
  readonly state: RemoteStoreState;
  /**
   * Resolves once the store can answer from an up-to-date copy (at once in
   * lookup mode); rejects when it is closed or after `timeoutMs`
   * (by default, `syncTimeoutMs`). Handy before a server starts listening.
   */
  ready(timeoutMs?: number): Promise<void>;
  /**
   * getCertificate fetches one stored certificate by id from the service
   * (GetCertificate, within `requestTimeoutMs`), for what people look at: a
   * mirror keeps only what a decision needs (the SHA-256 digest, the id and
   * the labels), not the DER. It never throws: a service that cannot be
   * reached gives `error`, and decisions, which never wait on it, go on
   * from the mirror.
   */
  getCertificate(id: string, signal?: AbortSignal): Promise<RemoteCertificateResult>;
}

/**
 * RemoteCertificate is a stored certificate as `getCertificate` returns it:
 * a `StoredCertificate` (with `notAfter`) and the fields the service reads
 * from its DER.
 */
export interface RemoteCertificate extends StoredCertificate {
  /** Subject distinguished name. */
  readonly subject: string;
  /** Issuer distinguished name. */
  readonly issuer: string;
  /** Serial number, upper-case hex. */
  readonly serialNumber: string;
  /** Start of the validity window. */
  readonly notBefore: Date;
  /** End of the validity window. */
  readonly notAfter: Date;
  /** Whether it is a CA certificate. */
  readonly isCa: boolean;
}

/**
 * RemoteCertificateResult is what `getCertificate` answers: the certificate,
 * `not_found`, or `error` (the service unreachable, a time-out, the store
 * closed), never a throw.
 */
export type RemoteCertificateResult =
  | { readonly kind: "found"; readonly certificate: RemoteCertificate }
  | { readonly kind: "not_found" }
  | { readonly kind: "error"; readonly error: unknown };
