import type { LoggedChange, StoreChange, StoredCertificate } from "../../core/store.js";
import { createCertificateIndex } from "../certificate-index.js";

/**
 * ReplicaCopy is one process's copy of a PostgreSQL store: every stored
 * certificate, by id (in code unit order, for `list`) and by thumbprint
 * (for lookups that never wait on the database).
 */
export interface ReplicaCopy {
  readonly size: number;
  get(id: string): StoredCertificate | undefined;
  findBySha256(sha256: string): StoredCertificate | undefined;
  /** At most `limit` certificates ordered by id, after `after`. */
  list(after: string | undefined, limit: number): StoredCertificate[];
  /** Applies one logged revision; returns the store changes it made. */
  apply(change: LoggedChange): StoreChange[];
  /**
   * Replaces the whole copy (a reload after the log was pruned); returns the
   * difference as one logged revision at `revision`, and its store changes.
   */
  replace(all: readonly StoredCertificate[], revision: number): { logged: LoggedChange; changes: StoreChange[] };
}

/**
 * createReplicaCopy returns a copy holding `initial` (ordered by id).
 */
export function createReplicaCopy(initial: readonly StoredCertificate[]): ReplicaCopy {
  let index = createCertificateIndex<StoredCertificate>();
  let ids: string[] = [];
  fill(initial);

  function fill(all: readonly StoredCertificate[]): void {
    index = createCertificateIndex<StoredCertificate>();
    for (const stored of all) index.set(stored);
    ids = [...all.map((s) => s.id)].sort(compare);
  }

  function set(stored: StoredCertificate): void {
    if (index.get(stored.id) === undefined) ids.splice(lowerBound(ids, stored.id), 0, stored.id);
    index.set(stored);
  }

  function remove(id: string): boolean {
    if (!index.delete(id)) return false;
    ids.splice(lowerBound(ids, id), 1);
    return true;
  }

  return {
    get size() {
      return index.size;
    },
    get: (id) => index.get(id),
    findBySha256: (sha256) => index.findByThumbprint(sha256),
    list(after, limit) {
      let start = after === undefined ? 0 : lowerBound(ids, after);
      if (after !== undefined && ids[start] === after) start++;
      const page: StoredCertificate[] = [];
      for (let i = start; i < ids.length && page.length < limit; i++) {
        const stored = index.get(ids[i]!);
        if (stored !== undefined) page.push(stored);
      }
      return page;
    },
    apply(change) {
      const changes: StoreChange[] = [];
      for (const id of change.deleted) {
        if (remove(id)) changes.push({ kind: "delete", id });
      }
      for (const stored of change.upserted) {
        set(stored);
        changes.push({ kind: "put", id: stored.id });
      }
      return changes;
    },
    replace(all, revision) {
      const before = index;
      fill(all);
      const upserted: StoredCertificate[] = [];
      const deleted: string[] = [];
      const changes: StoreChange[] = [];
      for (const stored of all) {
        const old = before.get(stored.id);
        if (
          old === undefined ||
          old.sha256 !== stored.sha256 ||
          JSON.stringify(old.labels) !== JSON.stringify(stored.labels)
        ) {
          upserted.push(stored);
          changes.push({ kind: "put", id: stored.id });
        }
      }
      for (const old of before.values()) {
        if (index.get(old.id) === undefined) {
          deleted.push(old.id);
          changes.push({ kind: "delete", id: old.id });
        }
      }
      return { logged: { revision, upserted, deleted }, changes };
    },
  };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function lowerBound(sorted: readonly string[], id: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
