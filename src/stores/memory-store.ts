import { Code, ConnectError } from "@connectrpc/connect";
import { parseCertificate, type Certificate } from "../core/certificate.js";
import {
  createChangeNotifier,
  isValidCertificateId,
  type StoreChange,
  type StoreVerdict,
  type StoredCertificate,
  type WritableCertificateStore,
} from "../core/store.js";
import { lookupFromMemory } from "../core/sync-lookup.js";
import { createCertificateIndex } from "./certificate-index.js";
import { clockOf } from "../core/options.js";
import { checkLabels } from "../core/labels.js";
import { observeStoreSize, storeMetricsOf, type StoreMetricsOptions } from "../core/metrics.js";
import { okAuditRecord, type AuditedWrite } from "../core/audit.js";
import { createMemoryAuditLog } from "./memory-audit-log.js";

/**
 * MemoryStoreOptions configures `createMemoryStore`.
 */
export interface MemoryStoreOptions extends StoreMetricsOptions {
  /**
   * Certificates to start with, as DER bytes or PEM text, each stored under
   * its SHA-256 thumbprint. By default, none.
   */
  certificates?: Iterable<Uint8Array | string>;
  /**
   * The current time, for the create time of stored certificates.
   * By default, `Date.now`.
   */
  clock?: () => number | Date;
  /**
   * Keep at most this many audit records of changes (see `audit`) and, apart,
   * as many of refused and failed attempts; the oldest of each go first.
   * By default, 10000.
   */
  maxAuditEvents?: number;
}

/**
 * createMemoryStore returns a `WritableCertificateStore` that keeps its
 * certificates in memory: the reference implementation of the writable store
 * contract, for tests, for examples, and as the model for a database-backed
 * store. Its contents are gone when the process ends.
 *
 * It admits a certificate when one with the same SHA-256 thumbprint is
 * stored, under any id (never by SHA-1 alone, which a collision could forge). Every put and delete bumps `revision`
 * and tells the `onChange` and `onChanges` listeners before it resolves.
 * Its `audit` log is kept in memory too (the newest `maxAuditEvents`).
 *
 * @example
 * const store = createMemoryStore();
 * await store.put("alice", aliceDer, { labels: { team: "payments" } });
 * createClientCertInterceptor({ store });
 */
export function createMemoryStore(options: MemoryStoreOptions = {}): WritableCertificateStore {
  const clock = clockOf(options.clock);
  const now = () => new Date(clock());
  const notifier = createChangeNotifier();
  const changeListeners = new Set<(changes: readonly StoreChange[], revision: number) => void>();
  const index = createCertificateIndex<StoredCertificate>();
  // Ids in code unit order, for `list`; kept sorted on every put and delete.
  const ids: string[] = [];
  let closed = false;
  const sizeGauge = observeStoreSize(storeMetricsOf(options, "memory"), () => ids.length);
  const audit = createMemoryAuditLog({ maxEvents: options.maxAuditEvents });

  // The memory log records at once, so the event is in before the write resolves.
  function recordWrite(action: "create" | "delete", write: AuditedWrite | undefined, stored: StoredCertificate): void {
    const actor = write?.actor;
    if (actor === undefined) return;
    void audit.record(okAuditRecord(write?.auditTime ?? now(), action, actor, stored.id, stored.sha256));
  }

  function announce(change: StoreChange): void {
    notifier.changed();
    const changes = [change];
    for (const listener of [...changeListeners]) {
      try {
        listener(changes, notifier.revision);
      } catch {
        // A faulty listener must not stop the others from hearing the change.
      }
    }
  }

  function assertOpen(): void {
    if (closed) {
      throw new ConnectError("certificate store is closed", Code.Unavailable);
    }
  }

  function assertId(id: string): void {
    if (typeof id !== "string" || !isValidCertificateId(id)) {
      throw new ConnectError(`invalid certificate id ${JSON.stringify(id)}`, Code.InvalidArgument);
    }
  }

  function insert(id: string, der: Uint8Array, labels: Readonly<Record<string, string>>): StoredCertificate {
    const certificate = parseDer(der);
    const stored: StoredCertificate = Object.freeze({
      id,
      der: certificate.der,
      sha1: certificate.sha1,
      sha256: certificate.sha256,
      labels: Object.freeze({ ...labels }),
      createTime: now(),
    });
    index.set(stored);
    ids.splice(lowerBound(ids, id), 0, id);
    return stored;
  }

  for (const input of options.certificates ?? []) {
    const certificate = parseCertificate(input);
    if (index.get(certificate.sha256) === undefined) {
      insert(certificate.sha256, certificate.der, {});
    }
  }

  function lookupSync(certificate: Certificate): StoreVerdict {
    if (closed) {
      return { kind: "error", error: new Error("certificate store is closed") };
    }
    // By SHA-256 alone: the store knows both digests of what it keeps, so a
    // certificate matching only by SHA-1 is a SHA-1 collision, not a match.
    const entry = index.findByThumbprint(certificate.sha256);
    if (entry === undefined) {
      return { kind: "refused", reason: "not_allowed" };
    }
    return { kind: "admitted", entry: { id: entry.id, thumbprint: entry.sha256, labels: entry.labels } };
  }

  return {
    get revision() {
      return notifier.revision;
    },
    lookup: lookupFromMemory(lookupSync),
    onChange: notifier.onChange,
    onChanges(listener) {
      changeListeners.add(listener);
      return () => {
        changeListeners.delete(listener);
      };
    },
    put(id, der, putOptions) {
      try {
        assertOpen();
        assertId(id);
        const labelProblem = checkLabels(putOptions?.labels ?? {});
        if (labelProblem !== undefined) {
          throw new ConnectError(`invalid labels: ${labelProblem.message}`, Code.InvalidArgument);
        }
        if (index.get(id) !== undefined) {
          throw new ConnectError(`certificate ${id} already exists`, Code.AlreadyExists);
        }
        const stored = insert(id, der, putOptions?.labels ?? {});
        recordWrite("create", putOptions, stored);
        announce({ kind: "put", id });
        return Promise.resolve(stored);
      } catch (error) {
        return Promise.reject(error);
      }
    },
    audit,
    delete(id, deleteOptions) {
      try {
        assertOpen();
        assertId(id);
        const stored = index.get(id);
        if (stored === undefined || !index.delete(id)) {
          throw new ConnectError(`certificate ${id} not found`, Code.NotFound);
        }
        ids.splice(lowerBound(ids, id), 1);
        recordWrite("delete", deleteOptions, stored);
        announce({ kind: "delete", id });
        return Promise.resolve();
      } catch (error) {
        return Promise.reject(error);
      }
    },
    get(id) {
      return closed
        ? Promise.reject(new ConnectError("certificate store is closed", Code.Unavailable))
        : Promise.resolve(index.get(id));
    },
    list({ after, limit }) {
      if (closed) {
        return Promise.reject(new ConnectError("certificate store is closed", Code.Unavailable));
      }
      let start = 0;
      if (after !== undefined) {
        start = lowerBound(ids, after);
        if (ids[start] === after) {
          start++;
        }
      }
      const page: StoredCertificate[] = [];
      for (let i = start; i < ids.length && page.length < limit; i++) {
        const stored = index.get(ids[i] as string);
        if (stored !== undefined) {
          page.push(stored);
        }
      }
      return Promise.resolve(page);
    },
    close() {
      if (!closed) {
        closed = true;
        sizeGauge?.remove();
        // Bump the revision so that connections re-check, and get the
        // `error` verdict of a closed store.
        notifier.changed();
        notifier.clear();
        changeListeners.clear();
      }
      return Promise.resolve();
    },
  };
}

// Parses exactly one DER certificate: Node's parser would also take PEM text,
// or ignore bytes after the certificate, and a store must keep only what it
// was asked to keep.
function parseDer(der: Uint8Array): Certificate {
  let certificate: Certificate;
  try {
    if (!(der instanceof Uint8Array) || der[0] !== 0x30) {
      throw new Error("not DER");
    }
    certificate = parseCertificate(der);
  } catch (cause) {
    throw new ConnectError("certificate could not be parsed", Code.InvalidArgument, undefined, undefined, cause);
  }
  if (certificate.der.length !== der.length) {
    throw new ConnectError("certificate could not be parsed: trailing bytes", Code.InvalidArgument);
  }
  return certificate;
}

// The index of the first id that is not smaller than `id`.
function lowerBound(sorted: readonly string[], id: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as string) < id) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}
