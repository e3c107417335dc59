// The mirror table's label sets, interned: a fleet has few distinct sets (a
// tenant, a model), so each is kept once, numbered, and counted by the
// records that carry it.

/** noLabels is the empty label set, set number 0 of every `LabelSets`. */
export const noLabels: Readonly<Record<string, string>> = Object.freeze({});

/**
 * LabelSets keeps each distinct label set once, under a number that records
 * store, and frees a set when the last record carrying it lets go.
 */
export interface LabelSets {
  /**
   * The sets by number: 0 is `noLabels`, undefined a freed number. The same
   * array for the life of the `LabelSets`, so callers may hold on to it.
   */
  readonly sets: readonly (Readonly<Record<string, string>> | undefined)[];
  /** Returns the number of a frozen copy of `labels`, counting one more holder. */
  intern(labels: Readonly<Record<string, string>>): number;
  /** Counts one holder of `set` fewer, freeing it when none is left. */
  release(set: number): void;
}

// A label set's key: its pairs in key order, with separators that JSON
// would escape, so that no two sets share a key.
function keyOf(labels: Readonly<Record<string, string>>, keys: string[]): string {
  if (keys.length === 1) return `${keys[0]}\u0001${labels[keys[0]!]}`;
  keys.sort();
  return JSON.stringify(keys.map((k) => [k, labels[k]]));
}

/**
 * createLabelSets returns a `LabelSets` holding only `noLabels`.
 */
export function createLabelSets(): LabelSets {
  const sets: (Readonly<Record<string, string>> | undefined)[] = [noLabels];
  const setRefs: number[] = [0];
  const setByKey = new Map<string, number>();
  const freeSets: number[] = [];
  // The label object seen last, and its set: a snapshot part shares one
  // object among the certificates that carry the same labels.
  let lastLabels: object | undefined;
  let lastSet = 0;

  return {
    sets,
    intern(labels) {
      if (labels === lastLabels && sets[lastSet] !== undefined) {
        setRefs[lastSet]!++;
        return lastSet;
      }
      const keys = Object.keys(labels);
      if (keys.length === 0) return 0;
      const key = keyOf(labels, keys);
      let set = setByKey.get(key);
      if (set === undefined) {
        set = freeSets.pop() ?? sets.length;
        sets[set] = Object.freeze(Object.fromEntries(keys.map((k) => [k, String(labels[k])])));
        setRefs[set] = 0;
        setByKey.set(key, set);
      }
      setRefs[set]!++;
      lastLabels = labels;
      lastSet = set;
      return set;
    },
    release(set) {
      if (set === 0 || --setRefs[set]! > 0) return;
      const labels = sets[set]!;
      setByKey.delete(keyOf(labels, Object.keys(labels)));
      sets[set] = undefined;
      freeSets.push(set);
      if (lastSet === set) lastLabels = undefined;
    },
  };
}
