/**
 * Waiters are callers waiting for an event (a mirror's first sync), each
 * until the event, its timeout or its signal's abort, whichever comes first.
 */
export interface Waiters {
  /** Resolves at the next `wakeAll`, after `timeoutMs`, or when `signal` aborts. */
  wait(timeoutMs: number, signal?: AbortSignal): Promise<void>;
  /** Resolves every waiting `wait`. */
  wakeAll(): void;
}

/**
 * createWaiters makes an empty set of `Waiters`.
 */
export function createWaiters(): Waiters {
  const waiters = new Set<() => void>();
  return {
    wait(timeoutMs, signal) {
      return new Promise((resolve) => {
        const done = () => {
          clearTimeout(timer);
          waiters.delete(done);
          signal?.removeEventListener("abort", done);
          resolve();
        };
        const timer = setTimeout(done, timeoutMs);
        waiters.add(done);
        signal?.addEventListener("abort", done);
      });
    },
    wakeAll() {
      for (const wake of [...waiters]) {
        wake();
      }
    },
  };
}
