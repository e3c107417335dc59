/**
 * LruCache is a bounded map that forgets the least recently used entry first:
 * certgate's one bounded cache (parsed forwarded certificates, built chains,
 * a remote store's answers), so that no input can grow memory without bound.
 */
export interface LruCache<K, V> {
  /** Returns the value and marks it as recently used. */
  get(key: K): V | undefined;
  /**
   * Returns the value without marking it: cheaper, for a hot path where an
   * entry pushed out by newer ones may simply be made again.
   */
  peek(key: K): V | undefined;
  /** Adds or replaces a value, evicting the least recently used beyond the capacity. */
  set(key: K, value: V): void;
  /** Removes an entry; tells whether there was one. */
  delete(key: K): boolean;
  /** Removes every entry. */
  clear(): void;
  /** The number of entries. */
  readonly size: number;
  /** The values, least recently used first, without marking them. */
  values(): IterableIterator<V>;
}

/**
 * LruCacheOptions adds a second bound to an `LruCache`: a total weight
 * (bytes, say) beside the count.
 */
export interface LruCacheOptions<K, V> {
  /** The largest total weight kept. By default, no limit. */
  maxWeight?: number;
  /** The weight of a value, taken when it is set. By default, 1. */
  weigh?: (value: V) => number;
  /** Called with each entry evicted to make room (not with deleted or replaced ones). By default, nothing. */
  onEvict?: (key: K, value: V) => void;
}

/**
 * createLruCache returns an `LruCache` holding at most `capacity` entries
 * (a capacity of 0 keeps nothing), and at most `options.maxWeight` in total.
 * A `Map` keeps insertion order, so moving a hit to the end and evicting
 * from the front is all it takes.
 */
export function createLruCache<K, V>(capacity: number, options: LruCacheOptions<K, V> = {}): LruCache<K, V> {
  const map = new Map<K, V>();
  const { maxWeight = Infinity, weigh, onEvict } = options;
  // Weights are kept only for a weighed cache, so the others stay one Map.
  const weights = weigh === undefined ? undefined : new Map<K, number>();
  let total = 0;
  const forget = (key: K) => {
    if (weights !== undefined) {
      total -= weights.get(key) ?? 0;
      weights.delete(key);
    }
    return map.delete(key);
  };
  return {
    get(key) {
      const value = map.get(key);
      if (value !== undefined) {
        map.delete(key);
        map.set(key, value);
      }
      return value;
    },
    peek: (key) => map.get(key),
    set(key, value) {
      forget(key);
      if (capacity <= 0) {
        return;
      }
      map.set(key, value);
      if (weights !== undefined && weigh !== undefined) {
        const w = weigh(value);
        weights.set(key, w);
        total += w;
      }
      while (map.size > capacity || total > maxWeight) {
        const oldest = map.entries().next();
        if (oldest.done === true) {
          break;
        }
        forget(oldest.value[0]);
        onEvict?.(oldest.value[0], oldest.value[1]);
      }
    },
    delete: (key) => forget(key),
    clear: () => {
      map.clear();
      weights?.clear();
      total = 0;
    },
    get size() {
      return map.size;
    },
    values: () => map.values(),
  };
}
