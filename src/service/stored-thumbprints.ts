import type { StoredCertificate, WritableCertificateStore } from "../core/store.js";
import { createCertificateIndex, type CertificateIndex } from "../stores/certificate-index.js";
import type { JournalEntry, WatchJournal } from "./watch-journal.js";

/**
 * StoredThumbprints finds stored certificates by thumbprint, for
 * VerifyCertificate with a thumbprint: the writable store contract looks up
 * certificates, not thumbprints.
 */
export interface StoredThumbprints {
  /** The stored certificate with this normalized thumbprint, if any. */
  find(thumbprint: string): Promise<StoredCertificate | undefined>;
  /** Stops following the journal and drops the index. */
  close(): void;
}

const pageSize = 1000;
const attempts = 3;

/**
 * createStoredThumbprints builds an in-memory thumbprint index of the store
 * on first use (a full listing), then keeps it current from the journal.
 * The changes made while the listing ran are replayed from the journal, so
 * none is missed; a journal reset drops the index until the next use.
 */
export function createStoredThumbprints(store: WritableCertificateStore, journal: WatchJournal): StoredThumbprints {
  let ready: Promise<CertificateIndex<StoredCertificate>> | undefined;
  let unsubscribe: (() => void) | undefined;
  let closed = false;

  function apply(index: CertificateIndex<StoredCertificate>, entry: JournalEntry): boolean {
    if (entry.kind === "reset") {
      return false;
    }
    for (const id of entry.deleted) {
      index.delete(id);
    }
    for (const stored of entry.upserted) {
      index.set(stored);
    }
    return true;
  }

  async function build(): Promise<CertificateIndex<StoredCertificate>> {
    for (let attempt = 1; ; attempt++) {
      const index = createCertificateIndex<StoredCertificate>();
      const from = journal.head;
      let after: string | undefined;
      for (;;) {
        const page = await store.list({ after, limit: pageSize });
        for (const stored of page) {
          index.set(stored);
        }
        if (page.length < pageSize) {
          break;
        }
        after = (page[page.length - 1] as StoredCertificate).id;
      }
      const missed = journal.since(from);
      if (missed !== undefined && missed.every((entry) => apply(index, entry))) {
        if (closed) {
          throw new Error("certificate store service is closed");
        }
        // No await since `since`: no entry can slip between the two.
        unsubscribe = journal.onEntry((entry) => {
          if (!apply(index, entry)) {
            unsubscribe?.();
            unsubscribe = undefined;
            ready = undefined;
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
    async find(thumbprint) {
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
      return index.findByThumbprint(thumbprint);
    },
    close() {
      closed = true;
      unsubscribe?.();
      unsubscribe = undefined;
      ready = undefined;
    },
  };
}
