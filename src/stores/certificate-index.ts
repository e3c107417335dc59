/**
 * IndexedCertificate is what a `CertificateIndex` needs of an entry: its id
 * and both thumbprints (upper-case hex).
 */
export interface IndexedCertificate {
  readonly id: string;
  readonly sha1: string;
  readonly sha256: string;
}

/**
 * CertificateIndex maps ids and thumbprints to entries, for stores that keep
 * their contents in memory (the memory store, the remote store's mirror, the
 * service's thumbprint look-ups). Several ids may hold the same certificate.
 * The directory store, which holds no certificate objects, indexes its
 * folder in a compact binary `DigestTable` instead.
 */
export interface CertificateIndex<T extends IndexedCertificate> {
  /** The number of entries. */
  readonly size: number;
  /** The entry stored under `id`. */
  get(id: string): T | undefined;
  /** Adds `entry`, replacing the entry of the same id. */
  set(entry: T): void;
  /** Removes the entry stored under `id`; tells whether there was one. */
  delete(id: string): boolean;
  /** The entry with this thumbprint (40 or 64 upper-case hex digits). */
  findByThumbprint(thumbprint: string): T | undefined;
  /** Every entry, in insertion order. */
  values(): IterableIterator<T>;
  /** Removes every entry. */
  clear(): void;
}

/**
 * createCertificateIndex returns an empty `CertificateIndex`.
 */
export function createCertificateIndex<T extends IndexedCertificate>(): CertificateIndex<T> {
  const byId = new Map<string, T>();
  const bySha1 = new Map<string, Set<string>>();
  const bySha256 = new Map<string, Set<string>>();

  function link(map: Map<string, Set<string>>, thumbprint: string, id: string): void {
    let ids = map.get(thumbprint);
    if (ids === undefined) {
      ids = new Set();
      map.set(thumbprint, ids);
    }
    ids.add(id);
  }
  function unlink(map: Map<string, Set<string>>, thumbprint: string, id: string): void {
    const ids = map.get(thumbprint);
    if (ids?.delete(id) && ids.size === 0) {
      map.delete(thumbprint);
    }
  }
  function first(map: Map<string, Set<string>>, thumbprint: string): T | undefined {
    const ids = map.get(thumbprint);
    if (ids === undefined) {
      return undefined;
    }
    for (const id of ids) {
      return byId.get(id);
    }
    return undefined;
  }
  function remove(id: string): boolean {
    const old = byId.get(id);
    if (old === undefined) {
      return false;
    }
    byId.delete(id);
    unlink(bySha1, old.sha1, id);
    unlink(bySha256, old.sha256, id);
    return true;
  }

  return {
    get size() {
      return byId.size;
    },
    get: (id) => byId.get(id),
    set(entry) {
      remove(entry.id);
      byId.set(entry.id, entry);
      link(bySha1, entry.sha1, entry.id);
      link(bySha256, entry.sha256, entry.id);
    },
    delete: remove,
    findByThumbprint(thumbprint) {
      return first(thumbprint.length === 40 ? bySha1 : bySha256, thumbprint);
    },
    values: () => byId.values(),
    clear() {
      byId.clear();
      bySha1.clear();
      bySha256.clear();
    },
  };
}
