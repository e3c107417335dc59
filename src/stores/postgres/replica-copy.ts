import type { LoggedChange, StoreChange } from "../../core/store.js";
import { createDigestTable, type DigestTable } from "../directory/digest-table.js";

/**
 * CopyEntry is what a decision needs of one stored certificate: the id that
 * admits it and its labels.
 */
export interface CopyEntry {
  readonly id: string;
  readonly labels: Readonly<Record<string, string>>;
}

/**
 * ReplicaCopy is one process's copy of a PostgreSQL store, reduced to what a
 * decision needs: SHA-256 thumbprint to id and labels. The DER, create
 * times and the rest stay in the database and are read page by page when
 * someone asks (get, list, watch snapshots).
 *
 * At 1,000,000 certificates it costs about 150 to 200 bytes each: the digest
 * in a binary table (`DigestTable`, no object per certificate), the id
 * string and its map entry, and a reference to the certificate's label set,
 * which is kept once for every certificate that carries the same labels
 * (device fleets label by model or site, not by device).
 */
export interface ReplicaCopy {
  readonly size: number;
  /** Whether a certificate is stored under `id`. */
  has(id: string): boolean;
  /** The entry whose SHA-256 thumbprint (upper-case hex) this is. */
  findBySha256(sha256: string): CopyEntry | undefined;
  /** Adds or replaces one certificate; tells whether anything changed. */
  set(id: string, sha256: string, labels: Readonly<Record<string, string>>): boolean;
  /** Removes the certificate stored under `id`; tells whether there was one. */
  remove(id: string): boolean;
  /** Applies one logged revision; returns the store changes it made. */
  apply(change: LoggedChange): StoreChange[];
  /**
   * Takes the contents of `other` (the store read again whole) and returns
   * the difference as store changes. `other` must not be used afterwards.
   */
  replace(other: ReplicaCopy): StoreChange[];
}

interface LabelSet {
  readonly key: string;
  readonly labels: Readonly<Record<string, string>>;
  refs: number;
}

interface State {
  table: DigestTable;
  byId: Map<string, number>;
  ids: (string | undefined)[];
  sets: (LabelSet | undefined)[];
  labelSets: Map<string, LabelSet>;
}

const noLabels: LabelSet = Object.freeze({ key: "{}", labels: Object.freeze({}), refs: 0 }) as LabelSet;

/**
 * createReplicaCopy returns an empty copy.
 */
export function createReplicaCopy(): ReplicaCopy & { readonly state: State } {
  let state: State = {
    table: createDigestTable(1024),
    byId: new Map(),
    ids: [],
    sets: [],
    labelSets: new Map(),
  };

  function labelSetOf(labels: Readonly<Record<string, string>>): LabelSet {
    const key = JSON.stringify(labels);
    if (key === "{}") return noLabels;
    let set = state.labelSets.get(key);
    if (set === undefined) {
      set = { key, labels: Object.freeze({ ...labels }), refs: 0 };
      state.labelSets.set(key, set);
    }
    set.refs++;
    return set;
  }

  function release(set: LabelSet | undefined): void {
    if (set === undefined || set === noLabels) return;
    if (--set.refs === 0) state.labelSets.delete(set.key);
  }

  function digestOf(sha256: string): string {
    return Buffer.from(sha256, "hex").toString("latin1");
  }

  function remove(id: string): boolean {
    const entry = state.byId.get(id);
    if (entry === undefined) return false;
    state.byId.delete(id);
    state.table.removeFile(entry);
    state.ids[entry] = undefined;
    release(state.sets[entry]);
    state.sets[entry] = undefined;
    return true;
  }

  function set(id: string, sha256: string, labels: Readonly<Record<string, string>>): boolean {
    const old = state.byId.get(id);
    const set = labelSetOf(labels);
    if (old !== undefined) {
      if (state.table.digestOf(old) === digestOf(sha256) && state.sets[old] === set) {
        release(set);
        return false;
      }
      remove(id);
    }
    const entry = state.table.addFile(0, [digestOf(sha256)]);
    state.byId.set(id, entry);
    state.ids[entry] = id;
    state.sets[entry] = set;
    return true;
  }

  return {
    get state() {
      return state;
    },
    get size() {
      return state.byId.size;
    },
    has: (id) => state.byId.has(id),
    findBySha256(sha256) {
      if (sha256.length !== 64) return undefined;
      const entry = state.table.findSha256(Buffer.from(sha256, "hex"));
      if (entry < 0) return undefined;
      const id = state.ids[entry];
      const labels = state.sets[entry];
      return id === undefined || labels === undefined ? undefined : { id, labels: labels.labels };
    },
    set,
    remove,
    apply(change) {
      const changes: StoreChange[] = [];
      for (const id of change.deleted) {
        if (remove(id)) changes.push({ kind: "delete", id });
      }
      for (const stored of change.upserted) {
        set(stored.id, stored.sha256, stored.labels);
        changes.push({ kind: "put", id: stored.id });
      }
      return changes;
    },
    replace(other) {
      const next = (other as ReplicaCopy & { readonly state: State }).state;
      const changes: StoreChange[] = [];
      for (const [id, entry] of next.byId) {
        const old = state.byId.get(id);
        if (
          old === undefined ||
          state.table.digestOf(old) !== next.table.digestOf(entry) ||
          state.sets[old]?.key !== next.sets[entry]?.key
        ) {
          changes.push({ kind: "put", id });
        }
      }
      for (const id of state.byId.keys()) {
        if (!next.byId.has(id)) changes.push({ kind: "delete", id });
      }
      state = next;
      return changes;
    },
  };
}
