// The cache behind online revocation: one entry per key (a certificate for
// OCSP, a URL for CRL distribution points), fetched once however many
// requests ask at the same time, refreshed in the background ahead of its
// expiry, and bounded by count and bytes.
import { createLruCache } from "../core/lru-cache.js";

/**
 * Fetched is what one fetch of a key gives: a value usable until `until`
 * (epoch ms), or why there is none.
 */
export type Fetched<V> =
  | {
      readonly kind: "ok";
      readonly value: V;
      /** When the value stops being usable (epoch ms, clock skew included). */
      readonly until: number;
      /** When to fetch it again in the background (epoch ms). */
      readonly refreshAt: number;
      /** Its size, for the byte bound. */
      readonly bytes: number;
    }
  | { readonly kind: "failed"; readonly reason: string; readonly why: string };

/**
 * CachedLookup is what the cache knows of a key: a usable value, or the
 * failure of its last fetch.
 */
export type CachedLookup<V> =
  | {
      readonly kind: "ok";
      readonly value: V;
      readonly until: number;
      readonly refreshAt: number;
      /**
       * When a decision made from this value must be made again: its refresh
       * time; while a refresh is in flight, at once (so the refreshed value
       * is seen as soon as it lands); after a failed refresh, the retry time.
       */
      readonly recheckAt: number;
    }
  | { readonly kind: "failed"; readonly reason: string; readonly why: string; readonly retryAt: number };

interface Entry<V> {
  current: (Fetched<V> & { kind: "ok" }) | undefined;
  failure: { readonly reason: string; readonly why: string; readonly retryAt: number } | undefined;
  pending: Promise<void> | undefined;
  /** Starts a queued background fetch at once, for a request that needs it. */
  promote: (() => void) | undefined;
}

/**
 * OnlineStatusCacheOptions bounds an `OnlineStatusCache`.
 */
export interface OnlineStatusCacheOptions<K, V> {
  /** The most entries kept. */
  readonly maxEntries: number;
  /** The most bytes kept (the sum of `Fetched.bytes`). */
  readonly maxBytes: number;
  /** How long a failed fetch is remembered before a request fetches again, ms. */
  readonly retryAfterMs: number;
  /** Whether a fresh value says the same as the one it replaces; when not, `revision` changes. */
  readonly same: (a: V, b: V) => boolean;
  /** Called with each failed fetch. */
  readonly onFailure: (key: K, reason: string, why: string) => void;
  /**
   * Whether the first value of a key, and the eviction of a value, change
   * `revision` too: for values read as a set (CRLs). By default, false.
   */
  readonly arrivalsChangeRevision?: boolean;
  /**
   * How many background refreshes run at once; the others queue, so that
   * certificates first seen together do not refresh together against the
   * responder. A request that must wait for a queued one starts it. By
   * default, 8.
   */
  readonly maxBackgroundFetches?: number;
  /** Called when each fetch ends: `"ok"` or the failure's reason, and how long it took (ms). By default, nothing. */
  readonly onFetched?: (result: string, ms: number) => void;
}

/**
 * OnlineStatusCache holds fetched revocation data.
 */
export interface OnlineStatusCache<K, V> {
  /**
   * Changes when a refreshed value says something else than the one it
   * replaced (a certificate revoked, a new CRL): the decisions made from the
   * old value must be made again. A key's first value and evictions do not
   * change it (unless `arrivalsChangeRevision`): the request that waited
   * reads the value directly, and a decision stays good until the expiry of
   * the value it was made from.
   */
  readonly revision: number;
  /**
   * What is known of `key` at time `t`, without a promise when the cache
   * has a usable value (fetching a fresh one in the background from
   * `refreshAt` on) or a failure (fetching again in the background once its
   * retry time has passed). Otherwise (a key never fetched, or whose value
   * expired) it fetches with `load` and resolves when that fetch ends;
   * concurrent callers share it. `load`
   * must not reject (a rejection counts as a failure) and must bound its
   * own duration.
   */
  lookup(key: K, t: number, load: () => Promise<Fetched<V>>): CachedLookup<V> | Promise<CachedLookup<V>>;
  /** Holds `revision` as a data property, for a reader on the hot path. */
  readonly changes: { readonly revision: number };
  /** Usable or stale values, most recently used last. */
  values(): IterableIterator<V>;
  /** How many fetches have been started (for benchmarks and tests). */
  readonly fetches: number;
  /** Waits for every fetch in flight (for tests and orderly shutdown). */
  settled(): Promise<void>;
}

/**
 * createOnlineStatusCache returns an `OnlineStatusCache`.
 */
export function createOnlineStatusCache<K, V>(options: OnlineStatusCacheOptions<K, V>): OnlineStatusCache<K, V> {
  // A plain object with a data property: the decision reads it on every
  // call (see `changes`), where a getter costs more than the read.
  const changes = { revision: 0 };
  let fetches = 0;
  const inFlight = new Set<Promise<void>>();
  const entries = createLruCache<K, Entry<V>>(options.maxEntries, {
    maxWeight: options.maxBytes,
    weigh: (e) => e.current?.bytes ?? 0,
    onEvict(_key, e) {
      if (e.current !== undefined && options.arrivalsChangeRevision === true) changes.revision++;
    },
  });

  const maxBackground = options.maxBackgroundFetches ?? 8;
  let background = 0;
  const queue: (() => void)[] = [];

  // Waits for a background slot; undefined when one is free.
  function slot(entry: Entry<V>): Promise<void> | undefined {
    if (background < maxBackground) {
      background++;
      return undefined;
    }
    return new Promise<void>((resolve) => {
      const go = () => {
        if (entry.promote !== go) return; // already started
        entry.promote = undefined;
        background++;
        resolve();
      };
      entry.promote = go;
      queue.push(go);
    });
  }

  function release(): void {
    background--;
    while (queue.length > 0 && background < maxBackground) (queue.shift() as () => void)();
  }

  function start(
    key: K,
    entry: Entry<V>,
    t: number,
    load: () => Promise<Fetched<V>>,
    inBackground: boolean,
  ): Promise<void> {
    if (entry.pending !== undefined) {
      if (!inBackground) entry.promote?.();
      return entry.pending;
    }
    fetches++;
    const queued = inBackground ? slot(entry) : undefined;
    let began = 0;
    const run = (queued ?? Promise.resolve())
      .then(() => {
        began = performance.now();
        return load();
      })
      .catch((error: unknown): Fetched<V> => ({ kind: "failed", reason: "internal", why: String(error) }))
      .then((fetched) => {
        if (inBackground) release();
        try {
          options.onFetched?.(fetched.kind === "ok" ? "ok" : fetched.reason, performance.now() - began);
        } catch {
          // Metrics must not change the decision.
        }
        entry.pending = undefined;
        inFlight.delete(run);
        if (fetched.kind === "ok") {
          const old = entry.current;
          entry.current = fetched;
          entry.failure = undefined;
          if (old === undefined ? options.arrivalsChangeRevision === true : !options.same(old.value, fetched.value)) {
            changes.revision++;
          }
          // Set again, so that the byte bound sees the new size (and a
          // replaced entry comes back if it was evicted meanwhile).
          if (entries.peek(key) === entry || old === undefined) entries.set(key, entry);
        } else {
          entry.failure = { reason: fetched.reason, why: fetched.why, retryAt: t + options.retryAfterMs };
          try {
            options.onFailure(key, fetched.reason, fetched.why);
          } catch {
            // A logger must not change the decision.
          }
        }
      });
    entry.pending = run;
    inFlight.add(run);
    return run;
  }

  function known(entry: Entry<V>, t: number): CachedLookup<V> | undefined {
    const current = entry.current;
    if (current !== undefined && t <= current.until) {
      const { value, until, refreshAt } = current;
      return { kind: "ok", value, until, refreshAt, recheckAt: refreshAt };
    }
    const failure = entry.failure;
    if (failure !== undefined && t < failure.retryAt) return { kind: "failed", ...failure };
    return undefined;
  }

  return {
    get revision() {
      return changes.revision;
    },
    changes,
    get fetches() {
      return fetches;
    },
    lookup(key, t, load) {
      let entry = entries.get(key);
      if (entry === undefined) {
        entry = { current: undefined, failure: undefined, pending: undefined, promote: undefined };
        entries.set(key, entry);
      }
      const found = known(entry, t);
      if (found !== undefined) {
        if (found.kind !== "ok" || t < found.refreshAt) return found;
        // Due a refresh: in the background, unless the last one failed lately.
        const failure = entry.failure;
        if (failure !== undefined && t < failure.retryAt) {
          return { ...found, recheckAt: Math.min(found.until, failure.retryAt) };
        }
        void start(key, entry, t, load, true);
        return { ...found, recheckAt: t };
      }
      const failure = entry.failure;
      if (failure !== undefined && entry.current === undefined) {
        // The retry time of a failure has passed: ask again in the
        // background and answer with the failure meanwhile, so that an
        // outage does not make a request wait every retry period.
        void start(key, entry, t, load, false);
        return { kind: "failed", reason: failure.reason, why: failure.why, retryAt: t };
      }
      const waiting = entry;
      // A fetch that gives a value already past its use (a clock far ahead) is a failure.
      const outdated = {
        kind: "failed" as const,
        reason: "stale",
        why: "the fetched status is already out of date",
        retryAt: t,
      };
      return start(key, entry, t, load, false).then(() => known(waiting, t) ?? outdated);
    },
    *values() {
      // A snapshot: iterating must not reorder the LRU.
      const list: V[] = [];
      for (const e of entries.values()) if (e.current !== undefined) list.push(e.current.value);
      yield* list;
    },
    async settled() {
      while (inFlight.size > 0) await Promise.all([...inFlight]);
    },
  };
}
