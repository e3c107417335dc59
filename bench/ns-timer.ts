import type { BenchOptions } from "./section.js";
import { median } from "./stats.js";

/**
 * NsTimer times tight loops in process: `loop(n)` runs the operation `n`
 * times and returns how many answered as expected (it must be `n`).
 */
export interface NsTimer {
  /** Median ns per call over the batches. */
  time(loop: (n: number) => number): number;
  /** The same for an asynchronous loop. */
  timeAsync(loop: (n: number) => Promise<number>): Promise<number>;
  readonly batches: number;
  readonly batchMs: number;
}

/**
 * createNsTimer sizes each batch to run for about `batchMs`, so slow
 * operations do not take minutes and fast ones are not lost in noise, and
 * reports the median of the batches. `label` names the section in errors.
 */
export function createNsTimer(options: Pick<BenchOptions, "quick">, label: string): NsTimer {
  const maxIterations = options.quick ? 1_000_000 : 5_000_000;
  const batches = options.quick ? 5 : 9;
  const batchMs = options.quick ? 40 : 100;
  const sized = (perCallNs: number) =>
    Math.max(1_000, Math.min(maxIterations, Math.round((batchMs * 1e6) / Math.max(perCallNs, 0.1))));
  const check = (got: number, n: number) => {
    if (got !== n) throw new Error(`${label}: a measured call gave an unexpected answer`);
  };
  return {
    batches,
    batchMs,
    time(loop) {
      const probe = 10_000;
      let t0 = process.hrtime.bigint();
      loop(probe); // also lets the optimizer see the loop before measuring
      const n = sized(Number(process.hrtime.bigint() - t0) / probe);
      const perBatch: number[] = [];
      for (let b = 0; b < batches; b++) {
        t0 = process.hrtime.bigint();
        const got = loop(n);
        const ns = Number(process.hrtime.bigint() - t0);
        check(got, n);
        perBatch.push(ns / n);
      }
      return median(perBatch);
    },
    async timeAsync(loop) {
      const probe = 10_000;
      let t0 = process.hrtime.bigint();
      await loop(probe);
      const n = sized(Number(process.hrtime.bigint() - t0) / probe);
      const perBatch: number[] = [];
      for (let b = 0; b < batches; b++) {
        t0 = process.hrtime.bigint();
        const got = await loop(n);
        const ns = Number(process.hrtime.bigint() - t0);
        check(got, n);
        perBatch.push(ns / n);
      }
      return median(perBatch);
    },
  };
}
