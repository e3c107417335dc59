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
}

/**
 * createLruCache returns an `LruCache` holding at most `capacity` entries
 * (a capacity of 0 keeps nothing). A `Map` keeps insertion order, so moving a
 * hit to the end and evicting from the front is all it takes.
 */
export function createLruCache<K, V>(capacity: number): LruCache<K, V> {
  const map = new Map<K, V>();
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
      map.delete(key);
      if (capacity <= 0) {
        return;
      }
      map.set(key, value);
      while (map.size > capacity) {
        const oldest = map.keys().next();
        if (oldest.done === true) {
          break;
        }
        map.delete(oldest.value);
      }
    },
    delete: (key) => map.delete(key),
    clear: () => map.clear(),
    get size() {
      return map.size;
    },
  };
}
