// The mirror's copy of the service, in typed arrays: per certificate, its
// SHA-256 digest (32 bytes), its id as latin1 bytes in one arena, an interned
// label set, and a slot in each of two open-addressing tables (by digest and
// by id). About 60 bytes plus the id's length, with no per-certificate object
// for the garbage collector to trace, so that an API server mirrors a million
// certificates in tens of megabytes and a look-up costs the same at 1k and
// 1M. Unlike the folder store's chained `DigestTable`, each record owns its
// digest and the tables hold only record numbers (linear probing, deletion by
// backward shift), which saves the chain links.

import { createLabelSets, noLabels } from "./label-sets.js";

const EMPTY = -1;
const DIGEST = 32;

/**
 * MirrorMatch is what a `MirrorTable` look-up finds: what a decision needs.
 */
export interface MirrorMatch {
  readonly id: string;
  readonly labels: Readonly<Record<string, string>>;
}

/**
 * MirrorTable maps SHA-256 digests to the ids (and label sets) stored under
 * them, and ids to their record, for additions and deletions by id. Several
 * ids may hold the same certificate; a look-up finds one of them.
 */
export interface MirrorTable {
  /** How many ids are stored. */
  readonly size: number;
  /**
   * Stores `id` with its SHA-256 thumbprint (64 hex digits, any case) and
   * labels, replacing what `id` held. Returns false, storing nothing, for a
   * thumbprint that is not 64 hex digits or an id that is not 1 to 255
   * ASCII characters.
   */
  set(id: string, sha256: string, labels: Readonly<Record<string, string>>): boolean;
  /**
   * Like `set`, with the binary digest at `at` in `digests` (a compact
   * snapshot's column). Returns false for an id that is not 1 to 255 ASCII
   * characters or fewer than 32 bytes there.
   */
  setDigest(id: string, digests: Uint8Array, at: number, labels: Readonly<Record<string, string>>): boolean;
  /** Removes `id`; tells whether it was there. */
  delete(id: string): boolean;
  /** The id and labels stored under this SHA-256 thumbprint (hex, any case), or undefined. */
  find(sha256: string): MirrorMatch | undefined;
}

// Hex digit values by character code, -1 for anything else.
const hexValue = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) hexValue[48 + i] = i;
for (let i = 0; i < 6; i++) {
  hexValue[65 + i] = 10 + i;
  hexValue[97 + i] = 10 + i;
}

// Writes 64 hex digits into `out` at `at`; false for anything else.
function decodeHex(hex: string, out: Uint8Array, at: number): boolean {
  if (hex.length !== 2 * DIGEST) return false;
  for (let i = 0; i < DIGEST; i++) {
    const hi = hexValue[hex.charCodeAt(2 * i)] ?? -1;
    const lo = hexValue[hex.charCodeAt(2 * i + 1)] ?? -1;
    if (hi < 0 || lo < 0) return false;
    out[at + i] = (hi << 4) | lo;
  }
  return true;
}

// FNV-1a over the character codes: ids are ASCII, so over their latin1 bytes too.
function hashId(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function asciiId(id: string): boolean {
  if (typeof id !== "string" || id.length === 0 || id.length > 255) return false;
  for (let i = 0; i < id.length; i++) if (id.charCodeAt(i) > 127) return false;
  return true;
}

/**
 * createMirrorTable returns an empty `MirrorTable` with room for
 * `initialCapacity` ids; it grows by doubling.
 */
export function createMirrorTable(initialCapacity = 1024): MirrorTable {
  let capacity = 16;
  while (capacity < initialCapacity) capacity *= 2;
  let digests = new Uint8Array(capacity * DIGEST);
  let idOffsets = new Uint32Array(capacity);
  // 0 marks a free record: ids have at least one character.
  let idLengths = new Uint8Array(capacity);
  let labelSets = new Uint32Array(capacity);
  let arena = Buffer.alloc(capacity * 16);
  let arenaUsed = 0;
  let arenaGarbage = 0;
  let used = 0;
  let size = 0;
  const freeRecords: number[] = [];
  // Two slots per record at most: half full, probes stay short.
  let slotMask = capacity * 2 - 1;
  let byDigest = new Int32Array(capacity * 2).fill(EMPTY);
  let byId = new Int32Array(capacity * 2).fill(EMPTY);
  const labelSetTable = createLabelSets();
  // Held directly: `find` reads a set with no call in between.
  const sets = labelSetTable.sets;
  const scratch = new Uint8Array(DIGEST);

  // Digests are uniformly distributed: their first four bytes are the hash.
  const digestHome = (r: number) =>
    digests[r * DIGEST]! |
    (digests[r * DIGEST + 1]! << 8) |
    (digests[r * DIGEST + 2]! << 16) |
    (digests[r * DIGEST + 3]! << 24);
  const idHome = (r: number) => {
    let h = 0x811c9dc5;
    const end = idOffsets[r]! + idLengths[r]!;
    for (let i = idOffsets[r]!; i < end; i++) h = Math.imul(h ^ arena[i]!, 0x01000193);
    return h >>> 0;
  };

  function insert(table: Int32Array, home: number, r: number): void {
    let slot = home & slotMask;
    while (table[slot] !== EMPTY) slot = (slot + 1) & slotMask;
    table[slot] = r;
  }

  // Empties `slot` and moves later records of the run back into the hole,
  // so that no probe sequence is broken and no tombstone is left.
  function removeAt(table: Int32Array, slot: number, homeOf: (r: number) => number): void {
    let hole = slot;
    let j = slot;
    for (;;) {
      j = (j + 1) & slotMask;
      const r = table[j]!;
      if (r === EMPTY) break;
      const k = homeOf(r) & slotMask;
      const stays = hole <= j ? hole < k && k <= j : hole < k || k <= j;
      if (stays) continue;
      table[hole] = r;
      hole = j;
    }
    table[hole] = EMPTY;
  }

  function idSlot(id: string, h: number): number {
    for (let slot = h & slotMask; ; slot = (slot + 1) & slotMask) {
      const r = byId[slot]!;
      if (r === EMPTY) return -1;
      if (idLengths[r] === id.length) {
        const base = idOffsets[r]!;
        let i = 0;
        while (i < id.length && arena[base + i] === id.charCodeAt(i)) i++;
        if (i === id.length) return slot;
      }
    }
  }

  function digestSlotOf(r: number): number {
    for (let slot = digestHome(r) & slotMask; ; slot = (slot + 1) & slotMask) {
      if (byDigest[slot] === r) return slot;
    }
  }

  function grow(): void {
    const to = capacity * 2;
    const d = new Uint8Array(to * DIGEST);
    d.set(digests);
    digests = d;
    const o = new Uint32Array(to);
    o.set(idOffsets);
    idOffsets = o;
    const l = new Uint8Array(to);
    l.set(idLengths);
    idLengths = l;
    const s = new Uint32Array(to);
    s.set(labelSets);
    labelSets = s;
    // Room in the arena for as many ids as records, at the mean length so
    // far: one copy per doubling rather than many small steps, which leave
    // freed blocks behind in the allocator.
    const wanted = Math.ceil((to * arenaUsed * 1.05) / Math.max(1, used));
    if (wanted > arena.length) {
      const next = Buffer.alloc(wanted);
      arena.copy(next, 0, 0, arenaUsed);
      arena = next;
    }
    capacity = to;
    slotMask = to * 2 - 1;
    byDigest = new Int32Array(to * 2).fill(EMPTY);
    byId = new Int32Array(to * 2).fill(EMPTY);
    for (let r = 0; r < used; r++) {
      if (idLengths[r] === 0) continue;
      insert(byDigest, digestHome(r), r);
      insert(byId, idHome(r), r);
    }
  }

  function writeId(r: number, id: string): void {
    if (arenaUsed + id.length > arena.length) {
      const live = arenaUsed - arenaGarbage;
      // Grown by a quarter (ids are most of what grows with the store),
      // compacted on the way when deleted ids take a quarter of it.
      const compact = arenaGarbage * 4 >= arenaUsed;
      const next = Buffer.alloc(Math.max(1024, Math.ceil(((compact ? live : arenaUsed) + id.length) * 1.25)));
      if (!compact) {
        arena.copy(next, 0, 0, arenaUsed);
      } else {
        let at = 0;
        for (let x = 0; x < used; x++) {
          if (idLengths[x] === 0) continue;
          arena.copy(next, at, idOffsets[x]!, idOffsets[x]! + idLengths[x]!);
          idOffsets[x] = at;
          at += idLengths[x]!;
        }
        arenaUsed = at;
        arenaGarbage = 0;
      }
      arena = next;
    }
    arena.write(id, arenaUsed, "latin1");
    idOffsets[r] = arenaUsed;
    idLengths[r] = id.length;
    arenaUsed += id.length;
  }

  function remove(id: string, h = hashId(id)): boolean {
    const slot = idSlot(id, h);
    if (slot < 0) return false;
    const r = byId[slot]!;
    removeAt(byId, slot, idHome);
    removeAt(byDigest, digestSlotOf(r), digestHome);
    labelSetTable.release(labelSets[r]!);
    arenaGarbage += idLengths[r]!;
    idLengths[r] = 0;
    freeRecords.push(r);
    size--;
    return true;
  }

  function store(id: string, digest: Uint8Array, at: number, labels: Readonly<Record<string, string>>): boolean {
    if (!asciiId(id)) return false;
    const h = hashId(id);
    if (size > 0) remove(id, h);
    let r = freeRecords.pop();
    if (r === undefined) {
      if (used === capacity) grow();
      r = used++;
    }
    digests.set(digest.subarray(at, at + DIGEST), r * DIGEST);
    writeId(r, id);
    labelSets[r] = labelSetTable.intern(labels);
    insert(byDigest, digestHome(r), r);
    insert(byId, h, r);
    size++;
    return true;
  }

  return {
    get size() {
      return size;
    },
    set(id, sha256, labels) {
      return decodeHex(sha256, scratch, 0) && store(id, scratch, 0, labels);
    },
    setDigest(id, bytes, at, labels) {
      return Number.isInteger(at) && at >= 0 && at + DIGEST <= bytes.length && store(id, bytes, at, labels);
    },
    delete: (id) => remove(id),
    find(sha256) {
      if (!decodeHex(sha256, scratch, 0)) return undefined;
      const home = scratch[0]! | (scratch[1]! << 8) | (scratch[2]! << 16) | (scratch[3]! << 24);
      for (let slot = home & slotMask; ; slot = (slot + 1) & slotMask) {
        const r = byDigest[slot]!;
        if (r === EMPTY) return undefined;
        const base = r * DIGEST;
        let i = 0;
        while (i < DIGEST && digests[base + i] === scratch[i]) i++;
        if (i === DIGEST) {
          const at = idOffsets[r]!;
          return { id: arena.toString("latin1", at, at + idLengths[r]!), labels: sets[labelSets[r]!] ?? noLabels };
        }
      }
    },
  };
}
