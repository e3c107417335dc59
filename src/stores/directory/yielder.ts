import { performance } from "node:perf_hooks";
import { setImmediate as nextTurn } from "node:timers/promises";

/**
 * Yielder lets a long synchronous loop give the event loop a turn now and
 * then, so that calls keep being served while a big folder is read.
 */
export interface Yielder {
  /** Resolves at once while within budget, otherwise after one event-loop turn. */
  maybeYield(): Promise<void> | undefined;
}

/**
 * createYielder returns a `Yielder` that yields after `budgetMs` of work.
 */
export function createYielder(budgetMs = 10): Yielder {
  let start = performance.now();
  let calls = 0;
  return {
    maybeYield() {
      // performance.now() costs ~50 ns: look at the clock every 32 calls.
      if (++calls % 32 !== 0 || performance.now() - start < budgetMs) {
        return undefined;
      }
      return nextTurn().then(() => {
        start = performance.now();
      });
    },
  };
}
