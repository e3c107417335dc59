import type { StoredCertificate, WritableCertificateStore } from "../core/store.js";
import type { JournalEntry, WatchJournal } from "./watch-journal.js";

/**
 * StoredThumbprints finds stored certificates by thumbprint, for
 * VerifyCertificate with a thumbprint: the writable store contract looks up
 * certificates, not thumbprints.
 */
export interface StoredThumbprints {
  /** The stored certificate with this normalized thumbprint, if any. */
  find(thumbprint: string): Promise<StoredCertificate | undefined>;
  /** Stops following the journal and drops the indexes. */
  close(): void;
}

const pageSize = 1000;
const attempts = 3;

type Algorithm = "sha1" | "sha256";

// Digest (raw bytes as a latin1 string: 20 or 32 characters, one byte each)
// to the ids that held it when the entry was made; usually one id.
type DigestIndex = Map<string, string | string[]>;

/**
 * createStoredThumbprints indexes the store by thumbprint on first use (a
 * full listing), one index per algorithm asked for, then keeps it current
 * from the journal. The changes made while the listing ran are replayed from
 * the journal, so none is missed; a journal reset drops the index until the
 * next use.
 *
 * An index maps raw digests to ids, nothing more (about 90 bytes per
 * certificate, instead of the stored certificates themselves): `find` reads
 * the certificate back and checks its thumbprint. Deleted and replaced ids
 * are not looked for in the index (a deletion names ids, not digests); a
 * candidate that no longer holds the digest is dropped when found, and an
 * index that gathered too many such leftovers is rebuilt.
 */
export function createStoredThumbprints(store: WritableCertificateStore, journal: WatchJournal): StoredThumbprints {
  const indexes = {
    sha1: createFollower("sha1", store, journal),
    sha256: createFollower("sha256", store, journal),
  };
  return {
    async find(thumbprint) {
      // A store that indexes SHA-256 thumbprints itself (the folder store)
      // answers from its index: no listing, no second index.
      if (thumbprint.length === 64 && store.findSha256 !== undefined) {
        await journal.settled();
        return store.findSha256(thumbprint);
      }
      const follower = thumbprint.length === 40 ? indexes.sha1 : indexes.sha256;
      return follower.find(thumbprint);
    },
    close() {
      indexes.sha1.close();
      indexes.sha256.close();
    },
  };
}

function createFollower(algorithm: Algorithm, store: WritableCertificateStore, journal: WatchJournal) {
  let ready: Promise<DigestIndex> | undefined;
  let unsubscribe: (() => void) | undefined;
  let closed = false;
  // Entries that may point at ids that no longer hold their digest.
  let leftovers = 0;
  let size = 0;

  function add(index: DigestIndex, stored: StoredCertificate): void {
    const key = Buffer.from(stored[algorithm], "hex").toString("latin1");
    const ids = index.get(key);
    if (ids === undefined) {
      index.set(key, stored.id);
      size++;
    } else if (typeof ids === "string") {
      if (ids !== stored.id) index.set(key, [ids, stored.id]);
    } else if (!ids.includes(stored.id)) {
      ids.push(stored.id);
    }
  }

  function apply(index: DigestIndex, entry: JournalEntry): boolean {
    if (entry.kind === "reset") {
      return false;
    }
    leftovers += entry.deleted.length + entry.upserted.length;
    for (const stored of entry.upserted) {
      add(index, stored);
    }
    return leftovers <= 1000 + size / 2;
  }

  function drop(): void {
    unsubscribe?.();
    unsubscribe = undefined;
    ready = undefined;
  }

  async function build(): Promise<DigestIndex> {
    for (let attempt = 1; ; attempt++) {
      const index: DigestIndex = new Map();
      size = 0;
      leftovers = 0;
      const from = journal.head;
      let after: string | undefined;
      for (;;) {
        const page = await store.list({ after, limit: pageSize, withoutDer: true });
        for (const stored of page) {
          add(index, stored);
        }
        if (page.length < pageSize) {
          break;
        }
        after = (page[page.length - 1] as StoredCertificate).id;
      }
      const missed = journal.since(from);
      if (missed?.every((entry) => apply(index, entry))) {
        if (closed) {
          throw new Error("certificate store service is closed");
        }
        // No await since `since`: no entry can slip between the two.
        unsubscribe = journal.onEntry((entry) => {
          if (!apply(index, entry)) {
            drop();
          }
        });
        return index;
      }
      if (attempt >= attempts) {
        throw new Error("the store changed too fast to index its thumbprints");
      }
    }
  }

  return {
    async find(thumbprint: string): Promise<StoredCertificate | undefined> {
      if (ready === undefined) {
        const building = build();
        ready = building;
        building.catch(() => {
          if (ready === building) {
            ready = undefined;
          }
        });
      }
      const index = await ready;
      // Read your writes: a certificate acknowledged just now may still be
      // on its way into the journal.
      await journal.settled();
      const key = Buffer.from(thumbprint, "hex").toString("latin1");
      const ids = index.get(key);
      if (ids === undefined) {
        return undefined;
      }
      const candidates = typeof ids === "string" ? [ids] : [...ids];
      const kept: string[] = [];
      let found: StoredCertificate | undefined;
      for (const id of candidates) {
        const stored = await store.get(id);
        if (stored !== undefined && stored[algorithm] === thumbprint) {
          kept.push(id);
          found ??= stored;
        }
      }
      // Leftovers found on the way go now (unless the index changed meanwhile).
      if (kept.length !== candidates.length && index.get(key) === ids) {
        if (kept.length === 0) {
          index.delete(key);
          size--;
        } else {
          index.set(key, kept.length === 1 ? (kept[0] as string) : kept);
        }
      }
      return found;
    },
    close() {
      closed = true;
      drop();
    },
  };
}
