import type { Certificate } from "./certificate.js";
import type { PublicRefusalReason } from "./refusal-reasons.js";
import type { AuditedWrite, AuditLog } from "./audit.js";
import type { SharedChangeLog } from "./shared-change-log.js";

// The shared change log's types, importable with the store contract that
// refers to them.
export type { LoggedChange, ReplicaState, SharedChangeLog } from "./shared-change-log.js";

/**
 * CertificateStore is the contract that every source of admitted certificates
 * implements: a static thumbprint list, a folder of uploaded certificates, a
 * remote certificate store service.
 *
 * The decision core calls `lookup` once per client certificate (a returning
 * client's new connections share the answer) and caches the verdict until
 * `revision` changes, so a store must bump
 * `revision` on every change of its contents (an addition or a removal). That
 * is how a revocation reaches the very next call on an HTTP/2 connection that
 * is already open.
 *
 * A store never throws from `lookup`: a failure is a verdict of kind `error`,
 * which certgate turns into a refusal (fail closed).
 */
export interface CertificateStore {
  /**
   * A number that changes whenever the contents change. Reading it must be
   * cheap: it is read on every call.
   */
  readonly revision: number;
  /**
   * Decides whether the store admits the certificate. The signal is aborted
   * when certgate stops waiting (a time-out); a remote store should cancel its
   * request then.
   */
  lookup(certificate: Certificate, signal: AbortSignal): Promise<StoreVerdict>;
  /**
   * Registers a listener called after every change of the contents, with the
   * new revision. Returns a function that removes the listener.
   */
  onChange(listener: (revision: number) => void): () => void;
  /**
   * Releases the store's resources (watchers, connections). Lookups after
   * `close()` answer with an `error` verdict.
   */
  close(): Promise<void>;
}

/**
 * StoreVerdict is what a store says of one certificate.
 */
export type StoreVerdict =
  | {
      readonly kind: "admitted";
      /** The entry that admitted the certificate. */
      readonly entry: StoreEntry;
      /**
       * Until when (epoch ms) the verdict may be reused without asking again,
       * for stores that cannot announce every change (a look-up cache with a
       * time to live). By default, until `revision` changes.
       */
      readonly expiresAt?: number;
    }
  | {
      readonly kind: "refused";
      /** Why, in machine-readable form, such as `not_allowed`. */
      readonly reason: RefusalReason;
      /** Until when (epoch ms) the verdict may be reused; see above. */
      readonly expiresAt?: number;
    }
  | {
      readonly kind: "error";
      /** The failure, for logs; never shown to the client. */
      readonly error: unknown;
    };

/**
 * StoreEntry describes what in a store matched a certificate.
 */
export interface StoreEntry {
  /** The entry's id in the store (a thumbprint, a file name, a stored id). */
  readonly id: string;
  /** Which thumbprint matched, upper-case hex, or undefined for a CA match. */
  readonly thumbprint?: string;
  /** Labels attached to the entry, if the store keeps any. */
  readonly labels?: Readonly<Record<string, string>>;
}

/**
 * RefusalReason is the machine-readable reason of a refusal: one of
 * certgate's (`refusals` in refusal-reasons.ts, the one list), or a store's
 * own, which clients see as `refused`.
 */
export type RefusalReason = PublicRefusalReason | (string & {});

/**
 * ChangeNotifier is a small helper for store authors: it keeps the revision
 * and the change listeners.
 */
export interface ChangeNotifier {
  /** The current revision. */
  readonly revision: number;
  /** Bumps the revision and calls every listener. */
  changed(): void;
  /** Adds a listener; returns its removal. */
  onChange(listener: (revision: number) => void): () => void;
  /** Removes every listener. */
  clear(): void;
}

/**
 * createChangeNotifier returns a `ChangeNotifier` starting at revision 1.
 */
export function createChangeNotifier(): ChangeNotifier {
  let revision = 1;
  const listeners = new Set<(revision: number) => void>();
  return {
    get revision() {
      return revision;
    },
    changed() {
      revision++;
      for (const listener of [...listeners]) {
        try {
          listener(revision);
        } catch {
          // A faulty listener must not stop the others from hearing the change.
        }
      }
    },
    onChange(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    clear() {
      listeners.clear();
    },
  };
}

/**
 * StoredCertificate is one certificate kept by a `WritableCertificateStore`.
 */
export interface StoredCertificate {
  /** The id it is stored under (see `isValidCertificateId`). */
  readonly id: string;
  /** The DER encoding. */
  readonly der: Uint8Array;
  /** SHA-1 thumbprint, upper-case hex. */
  readonly sha1: string;
  /** SHA-256 thumbprint, upper-case hex. */
  readonly sha256: string;
  /** Labels given when it was stored. */
  readonly labels: Readonly<Record<string, string>>;
  /** When it was stored. */
  readonly createTime: Date;
  /**
   * The end of the certificate's validity window, for stores that keep it
   * (a database column) so that filtering by expiry need not parse the DER.
   * By default, undefined: read from the DER when needed.
   */
  readonly notAfter?: Date;
}

/**
 * PutEntry is one certificate of a `putAll` batch: its id, checked DER and labels.
 */
export interface PutEntry {
  readonly id: string;
  readonly der: Uint8Array;
  readonly labels?: Readonly<Record<string, string>>;
}

/**
 * PutAllResult is what `putAll` did: stored every entry, or none because
 * some were refused (each named by its position in the batch).
 */
export type PutAllResult =
  | { readonly kind: "stored"; readonly certificates: readonly StoredCertificate[] }
  | {
      readonly kind: "refused";
      readonly items: readonly { readonly index: number; readonly id: string; readonly reason: string }[];
    };

/**
 * StoreChange is one change of a writable store's contents.
 */
export type StoreChange =
  | { readonly kind: "put"; readonly id: string }
  | { readonly kind: "delete"; readonly id: string };

/**
 * WritableCertificateStore is a `CertificateStore` whose contents can be
 * changed by id: the folder store's write side, and the seam where a
 * database-backed store slots in under the certificate store service.
 *
 * Write methods throw `ConnectError`s: `InvalidArgument` for a bad id or an
 * unparsable certificate, `AlreadyExists` for an id that is taken, `NotFound`
 * for an unknown id. A write resolves only once it is durable.
 */
export interface WritableCertificateStore extends CertificateStore {
  /**
   * Stores one certificate (DER) under `id`. Fails with `AlreadyExists` when
   * the id is taken, and with `InvalidArgument` for labels that `checkLabels`
   * refuses.
   */
  put(
    id: string,
    der: Uint8Array,
    options?: { labels?: Readonly<Record<string, string>> } & AuditedWrite,
  ): Promise<StoredCertificate>;
  /** Removes the certificate stored under `id`; `NotFound` when there is none. */
  delete(id: string, options?: AuditedWrite): Promise<void>;
  /** Returns the certificate stored under `id`, or undefined. */
  get(id: string): Promise<StoredCertificate | undefined>;
  /**
   * Lists stored certificates ordered by id, starting after `after`, at most
   * `limit` of them.
   *
   * `expiresBefore` is a hint: a store that can filter cheaply (an indexed
   * column) may leave out certificates whose validity ends at or after it.
   * A store may ignore it; the service checks every certificate it returns.
   */
  list(options: {
    after?: string;
    limit: number;
    expiresBefore?: Date;
    /** A hint as `expiresBefore`: only certificates carrying every one of these labels. */
    labels?: Readonly<Record<string, string>>;
    /**
     * A hint: the caller needs no DER (a watch snapshot without
     * `include_der`), so a store that keeps it elsewhere (a database
     * column) may leave `der` empty. By default, false.
     */
    withoutDer?: boolean;
  }): Promise<StoredCertificate[]>;
  /**
   * Optional: stores every one of `entries` or none of them, in one
   * transaction (the PostgreSQL store). When ids are taken, it resolves as
   * `refused` naming each of them, and nothing is stored. With an
   * `actor`, each certificate stored gets its `create` record in the same
   * transaction. Without it, the certificate store service stores the
   * entries one by one and removes them again when one fails.
   */
  putAll?(entries: readonly PutEntry[], options?: AuditedWrite): Promise<PutAllResult>;
  /**
   * Optional: the stored certificate whose SHA-256 thumbprint (upper-case
   * hex) this is, found in an index the store keeps anyway (the folder
   * store's). Without it, the certificate store service builds its own
   * thumbprint index on the first VerifyCertificate by thumbprint, by
   * listing the whole store.
   */
  findSha256?(thumbprint: string): Promise<StoredCertificate | undefined>;
  /**
   * Registers a listener called with the changes of each new revision,
   * whether made through this object or found on disk. Returns its removal.
   */
  onChanges(listener: (changes: readonly StoreChange[], revision: number) => void): () => void;
  /**
   * The change log of a store shared by several processes (a database), so
   * that the certificate store service numbers its revisions like every
   * other replica of the same store. By default (the folder and memory
   * stores), none: the service numbers the changes it hears itself.
   */
  readonly sharedLog?: SharedChangeLog;
  /**
   * The store's audit trail, kept in the same backend as the certificates
   * (see `AuditLog` for the contract: a store with one records the `ok`
   * event of every `put` and `delete` given an `actor`). By default, none:
   * the certificate store service then keeps no audit trail unless given one.
   */
  readonly audit?: AuditLog;
}

const certificateId = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

/**
 * isValidCertificateId tells whether `id` may name a stored certificate:
 * letters, digits, `.`, `_` and `-`, 1 to 128 characters, not starting with
 * `.`, so that no id can name a path outside the store's folder or a hidden
 * file.
 */
export function isValidCertificateId(id: string): boolean {
  return certificateId.test(id);
}
