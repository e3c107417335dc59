// The metrics of online revocation: how many fetches each source made, how
// they ended, and how long they took.
import type { MetricsAttributes, MetricsMeter } from "../core/metrics.js";

/**
 * RevocationMetrics records the fetches of online revocation.
 */
export interface RevocationMetrics {
  /** Records one fetch of `source` that ended with `result` (`ok` or a failure reason) after `ms`. */
  fetched(source: "ocsp" | "crl", result: string, ms: number): void;
}

// One series of the counter: its attributes and its count so far.
interface Slot {
  readonly attributes: MetricsAttributes;
  count: number;
}

/**
 * createRevocationMetrics returns the `RevocationMetrics` of a meter:
 * `certgate.revocation.fetches`, an observable counter (`{fetch}`), and
 * `certgate.revocation.fetch.duration`, a histogram in seconds, both with
 * `certgate.revocation.source` (`ocsp`, `crl`) and
 * `certgate.revocation.result` (`ok` or the failure reason, a bounded set).
 */
export function createRevocationMetrics(meter: MetricsMeter): RevocationMetrics {
  const slots = new Map<string, Slot>();
  meter
    .createObservableCounter("certgate.revocation.fetches", {
      description: "OCSP and CRL distribution point fetches, by source and result",
      unit: "{fetch}",
    })
    .addCallback((result) => {
      for (const slot of slots.values()) result.observe(slot.count, slot.attributes);
    });
  const duration = meter.createHistogram("certgate.revocation.fetch.duration", {
    description: "How long OCSP and CRL distribution point fetches took",
    unit: "s",
  });
  return {
    fetched(source, result, ms) {
      const key = `${source}:${result}`;
      let slot = slots.get(key);
      if (slot === undefined) {
        slot = {
          attributes: { "certgate.revocation.source": source, "certgate.revocation.result": result },
          count: 0,
        };
        slots.set(key, slot);
      }
      slot.count++;
      duration.record(ms / 1000, slot.attributes);
    },
  };
}
