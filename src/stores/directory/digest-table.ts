// A hash index of binary SHA-256 thumbprints in typed arrays: 32 bytes of
// digest and four 32-bit words per certificate, about 50 bytes in all, with
// no per-certificate object for the garbage collector to trace. Digests are
// uniformly distributed, so their first four bytes are the hash; chains stay
// about one entry long, and a look-up costs the same at 1k and 100k.

const NONE = -1;
const SHA256 = 32;

/**
 * DigestTable maps SHA-256 digests to entries, each entry owned by one
 * file slot of the directory store; the entries of one file are chained in
 * order. It is the compact, binary index of a folder of up to hundreds of
 * thousands of certificates; stores that keep certificate objects use
 * `CertificateIndex` instead (ids, SHA-1 and SHA-256 to entries).
 *
 * Only SHA-256 is indexed: a folder holds whole certificates, so the SHA-256
 * of the presented DER names the same certificate as its SHA-1 would, and
 * cannot be forged by a SHA-1 collision.
 */
export interface DigestTable {
  /** How many entries are stored. */
  readonly size: number;
  /**
   * Adds the certificates of one file, in order, and returns the first
   * entry (chained through `nextInFile`), or -1 for none. Digests come as
   * 32-character latin1 strings (`crypto.hash(..., "latin1")`), which cost no
   * native allocation per certificate, unlike a Buffer.
   */
  addFile(owner: number, digests: readonly string[]): number;
  /** Makes room for `count` entries in all, so that a big load does not grow by doubling. */
  reserve(count: number): void;
  /** Removes the chain of entries starting at `first`. */
  removeFile(first: number): void;
  /** The entry whose SHA-256 digest is `digest`, or -1. */
  findSha256(digest: Uint8Array): number;
  /** The file slot that owns an entry. */
  ownerOf(entry: number): number;
  /** The next entry of the same file, or -1. */
  nextInFile(entry: number): number;
  /** An entry's digest, as a latin1 string (as given to `addFile`). */
  digestOf(entry: number): string;
}

function hashOf(digest: Uint8Array, mask: number): number {
  return (digest[0]! | (digest[1]! << 8) | (digest[2]! << 16) | (digest[3]! << 24)) & mask;
}

/**
 * createDigestTable returns an empty `DigestTable` that grows by
 * doubling.
 */
export function createDigestTable(initialCapacity = 1024): DigestTable {
  let capacity = 16;
  while (capacity < initialCapacity) capacity *= 2;
  let mask = capacity - 1;
  let sha256 = Buffer.alloc(capacity * SHA256);
  let owner = new Int32Array(capacity).fill(NONE);
  let inFile = new Int32Array(capacity); // doubles as the free list's link
  let next256 = new Int32Array(capacity);
  let buckets256 = new Int32Array(capacity).fill(NONE);
  let used = 0;
  let size = 0;
  let free = NONE;

  function link(entry: number): void {
    const h256 = hashOf(sha256.subarray(entry * SHA256), mask);
    next256[entry] = buckets256[h256]!;
    buckets256[h256] = entry;
  }

  function resize(to: number): void {
    const old = { sha256, owner, inFile };
    capacity = to;
    mask = capacity - 1;
    sha256 = Buffer.alloc(capacity * SHA256);
    old.sha256.copy(sha256);
    owner = new Int32Array(capacity).fill(NONE);
    owner.set(old.owner);
    inFile = new Int32Array(capacity);
    inFile.set(old.inFile);
    next256 = new Int32Array(capacity);
    buckets256 = new Int32Array(capacity).fill(NONE);
    for (let e = 0; e < used; e++) {
      if (owner[e] !== NONE) link(e);
    }
  }

  function allocate(): number {
    if (free !== NONE) {
      const entry = free;
      free = inFile[entry]!;
      return entry;
    }
    if (used === capacity) resize(capacity * 2);
    return used++;
  }

  function unlink(buckets: Int32Array, next: Int32Array, bucket: number, entry: number): void {
    let e = buckets[bucket]!;
    if (e === entry) {
      buckets[bucket] = next[entry]!;
      return;
    }
    while (e !== NONE) {
      const n = next[e]!;
      if (n === entry) {
        next[e] = next[entry]!;
        return;
      }
      e = n;
    }
  }

  function find(buckets: Int32Array, next: Int32Array, digests: Uint8Array, width: number, digest: Uint8Array): number {
    if (digest.length !== width) return NONE;
    let e = buckets[hashOf(digest, mask)]!;
    while (e !== NONE) {
      const base = e * width;
      let i = 0;
      while (i < width && digests[base + i] === digest[i]) i++;
      if (i === width) return e;
      e = next[e]!;
    }
    return NONE;
  }

  return {
    get size() {
      return size;
    },
    reserve(count) {
      let to = capacity;
      while (to < count) to *= 2;
      if (to > capacity) resize(to);
    },
    addFile(fileOwner, digests) {
      let first = NONE;
      // Built back to front so that the chain reads in file order.
      for (let i = digests.length - 1; i >= 0; i--) {
        const d = digests[i]!;
        const entry = allocate();
        if (d.length !== SHA256 || sha256.write(d, entry * SHA256, SHA256, "latin1") !== SHA256) {
          throw new TypeError("a digest must be 32 latin1 characters");
        }
        owner[entry] = fileOwner;
        inFile[entry] = first;
        link(entry);
        first = entry;
        size++;
      }
      return first;
    },
    removeFile(first) {
      let e = first;
      while (e !== NONE) {
        const next = inFile[e]!;
        unlink(buckets256, next256, hashOf(sha256.subarray(e * SHA256), mask), e);
        owner[e] = NONE;
        inFile[e] = free;
        free = e;
        size--;
        e = next;
      }
    },
    findSha256: (digest) => find(buckets256, next256, sha256, SHA256, digest),
    ownerOf: (entry) => owner[entry] ?? NONE,
    nextInFile: (entry) => inFile[entry] ?? NONE,
    digestOf: (entry) => sha256.toString("latin1", entry * SHA256, entry * SHA256 + SHA256),
  };
}
