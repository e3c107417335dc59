import { createDigestTable } from "./digest-table.js";
import type { FileSignature } from "./types.js";

// The in-memory index of the leaf folder: one slot per loaded file, its
// columns in typed arrays (signature, first certificate, count), its id in a
// Map; the certificates themselves only as digests in the thumbprint index.

const NONE = -1;

/**
 * IndexedFile describes one loaded file.
 */
export interface IndexedFile {
  readonly id: string;
  readonly name: string;
  readonly signature: FileSignature;
  /** How many certificates it holds (more than one for a bundle). */
  readonly count: number;
}

/**
 * IndexMatch is the file and position of a matched certificate.
 */
export interface IndexMatch {
  /** The entry id: the file's id, or `id#n` for the n-th certificate of a bundle (n ≥ 2). */
  readonly id: string;
  readonly fileId: string;
}

/**
 * DirectoryIndex is the leaf folder's index.
 */
export interface DirectoryIndex {
  /** How many files are loaded. */
  readonly files: number;
  /** How many certificates are loaded. */
  readonly certificates: number;
  file(id: string): IndexedFile | undefined;
  /** Makes room for `files` files in all, before a big load. */
  reserve(files: number): void;
  /** Updates the signature of a file whose contents did not change. */
  touch(id: string, name: string, signature: FileSignature): void;
  /**
   * Loads (or replaces) the file of `id`, with the SHA-256 digests of its
   * certificates as latin1 strings. Returns how many certificates the id had
   * before (0 for a new id) and the positions whose certificate is new.
   */
  set(
    id: string,
    name: string,
    signature: FileSignature,
    digests: readonly string[],
  ): { previous: number; changed: number[] };
  /** Unloads the file of `id`; returns how many certificates it had, or 0. */
  remove(id: string): number;
  /** The entry of the certificate whose SHA-256 digest is `digest`. */
  matchSha256(digest: Uint8Array): IndexMatch | undefined;
  /** Every loaded id. */
  ids(): IterableIterator<string>;
  /** Every entry id (bundles expanded), sorted; cached until the next change. */
  sortedEntryIds(): readonly string[];
}

/**
 * memberId names the n-th (0-based) certificate of the file `id`.
 */
export function memberId(id: string, member: number): string {
  return member === 0 ? id : `${id}#${member + 1}`;
}

/**
 * createDirectoryIndex returns an empty `DirectoryIndex`.
 */
export function createDirectoryIndex(): DirectoryIndex {
  const certificates = createDigestTable();
  const slots = new Map<string, number>();
  const freeSlots: number[] = [];
  const extensions = new Map<string, string>(); // interned, so each slot holds a shared string
  let capacity = 1024;
  const ids: (string | undefined)[] = [];
  const exts: (string | undefined)[] = [];
  let signatures = new Float64Array(capacity * 4);
  let firsts = new Int32Array(capacity).fill(NONE);
  let counts = new Int32Array(capacity);
  let sorted: string[] | undefined;

  function grow(to = capacity * 2): void {
    capacity = to;
    const s = new Float64Array(capacity * 4);
    s.set(signatures);
    signatures = s;
    const f = new Int32Array(capacity).fill(NONE);
    f.set(firsts);
    firsts = f;
    const c = new Int32Array(capacity);
    c.set(counts);
    counts = c;
  }

  function slotFor(id: string): number {
    let slot = slots.get(id);
    if (slot === undefined) {
      // An id sliced from a file name would keep the whole name alive (V8
      // slices strings of 13 or more characters by reference): copy it. Ids
      // are ASCII, so latin1 is exact.
      if (id.length >= 13) id = Buffer.from(id, "latin1").toString("latin1");
      slot = freeSlots.pop() ?? ids.length;
      if (slot >= capacity) grow();
      ids[slot] = id;
      slots.set(id, slot);
    }
    return slot;
  }

  function write(slot: number, name: string, signature: FileSignature): void {
    const ext = name.slice(ids[slot]!.length);
    let interned = extensions.get(ext);
    if (interned === undefined) {
      interned = ext;
      extensions.set(ext, ext);
    }
    exts[slot] = interned;
    signatures[slot * 4] = signature.ino;
    signatures[slot * 4 + 1] = signature.size;
    signatures[slot * 4 + 2] = signature.mtimeMs;
    signatures[slot * 4 + 3] = signature.ctimeMs;
  }

  function digestsOf(slot: number): string[] {
    const list: string[] = [];
    for (let e = firsts[slot]!; e !== NONE; e = certificates.nextInFile(e)) list.push(certificates.digestOf(e));
    return list;
  }

  function match(entry: number): IndexMatch | undefined {
    if (entry === NONE) return undefined;
    const slot = certificates.ownerOf(entry);
    const fileId = ids[slot]!;
    let member = 0;
    for (let e = firsts[slot]!; e !== entry && e !== NONE; e = certificates.nextInFile(e)) member++;
    return { id: memberId(fileId, member), fileId };
  }

  return {
    get files() {
      return slots.size;
    },
    get certificates() {
      return certificates.size;
    },
    file(id) {
      const slot = slots.get(id);
      if (slot === undefined) return undefined;
      return {
        id,
        name: id + exts[slot]!,
        signature: {
          ino: signatures[slot * 4]!,
          size: signatures[slot * 4 + 1]!,
          mtimeMs: signatures[slot * 4 + 2]!,
          ctimeMs: signatures[slot * 4 + 3]!,
        },
        count: counts[slot]!,
      };
    },
    reserve(files) {
      let to = capacity;
      while (to < files) to *= 2;
      if (to > capacity) grow(to);
      certificates.reserve(files);
    },
    touch(id, name, signature) {
      const slot = slots.get(id);
      if (slot !== undefined) write(slot, name, signature);
    },
    set(id, name, signature, digests) {
      const existing = slots.get(id);
      const previous = existing === undefined ? 0 : counts[existing]!;
      const slot = slotFor(id);
      write(slot, name, signature);
      const old = existing === undefined ? [] : digestsOf(slot);
      const changed: number[] = [];
      for (let m = 0; m < digests.length; m++) if (old[m] !== digests[m]) changed.push(m);
      if (changed.length === 0 && old.length === digests.length) return { previous, changed };
      if (existing !== undefined) certificates.removeFile(firsts[slot]!);
      firsts[slot] = certificates.addFile(slot, digests);
      counts[slot] = digests.length;
      sorted = undefined;
      return { previous, changed };
    },
    remove(id) {
      const slot = slots.get(id);
      if (slot === undefined) return 0;
      const previous = counts[slot]!;
      certificates.removeFile(firsts[slot]!);
      firsts[slot] = NONE;
      counts[slot] = 0;
      ids[slot] = undefined;
      exts[slot] = undefined;
      slots.delete(id);
      freeSlots.push(slot);
      sorted = undefined;
      return previous;
    },
    matchSha256: (digest) => match(certificates.findSha256(digest)),
    ids: () => slots.keys(),
    sortedEntryIds() {
      if (sorted === undefined) {
        const list: string[] = [];
        for (const [id, slot] of slots) {
          for (let m = 0; m < counts[slot]!; m++) list.push(memberId(id, m));
        }
        // Code-unit order, the order `after` compares in.
        sorted = list.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      }
      return sorted;
    },
  };
}
