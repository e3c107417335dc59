// The decision's metrics: a counter of decisions, the duration of store
// look-ups that left the per-connection cache, and a gauge of the admitted
// certificates that expire soon. Each series of the counter is built once;
// a warm admitted call bumps its count, reads the clock and one map entry.
import type { Certificate } from "../core/certificate.js";
import type { Decision, DecisionVia } from "../core/decision-report.js";
import { observeGauge, type MetricsAttributes, type MetricsMeter } from "../core/metrics.js";
import { publicReason } from "../core/refusal-reasons.js";
import type { StoreVerdict } from "../core/store.js";

/**
 * DecisionMetrics records one decision core's metrics.
 */
export interface DecisionMetrics {
  /** Counts one call; `decision` undefined is a procedure left open. `procedure` only with `metricsProcedure`. */
  decided(decision: Decision | undefined, via: DecisionVia, procedure: string | undefined): void;
  /** Records the duration of one store look-up, in milliseconds. */
  lookedUp(ms: number, verdict: StoreVerdict): void;
}

/** How many procedures get attributes of their own; the rest are `_OTHER`. */
export const maxMetricsProcedures = 1000;
/** How many admitted certificates the expiry gauge remembers. */
export const maxTrackedCertificates = 10_000;
const day = 86_400_000;

// One series of `certgate.decisions`: its attributes and its count so far.
interface Slot {
  readonly attributes: MetricsAttributes;
  count: number;
}

// The series of one procedure (or of all, without `metricsProcedure`), by via.
interface Slots {
  readonly admitted: Record<string, Slot>;
  readonly open: Record<string, Slot>;
  // By via, then by public reason.
  readonly refused: Record<string, Map<string, Slot>>;
  readonly reportOnly: Record<string, Map<string, Slot>>;
  readonly rpc: MetricsAttributes;
}

const vias: readonly DecisionVia[] = ["interceptor", "gate", "grpc-js", "authz"];

// Every series of one meter, shared by all the decision cores recording to
// it, so that two gates of one process add up instead of hiding each other.
interface SeriesRegistry {
  slot(attributes: MetricsAttributes): Slot;
}

const registries = new WeakMap<MetricsMeter, SeriesRegistry>();

// The counter is asynchronous: a call only bumps a number in its series,
// and the collection reads them all. A synchronous counter's `add` hashes
// the attributes on every call, which costs microseconds.
function registryOf(meter: MetricsMeter): SeriesRegistry {
  let registry = registries.get(meter);
  if (registry !== undefined) return registry;
  const series = new Map<string, Slot>();
  meter
    .createObservableCounter("certgate.decisions", {
      description: "Calls decided by certgate, by result, refusal reason and adapter.",
      unit: "{decision}",
    })
    .addCallback((result) => {
      // A series appears once it has counted something.
      for (const slot of series.values()) if (slot.count > 0) result.observe(slot.count, slot.attributes);
    });
  registry = {
    slot(attributes) {
      const key = JSON.stringify(Object.entries(attributes).sort(([a], [b]) => (a < b ? -1 : 1)));
      let slot = series.get(key);
      if (slot === undefined) {
        slot = { attributes, count: 0 };
        series.set(key, slot);
      }
      return slot;
    },
  };
  registries.set(meter, registry);
  return registry;
}

function rpcAttributes(procedure: string): MetricsAttributes {
  // "/pkg.v1.Service/Method", as the RPC semantic conventions split it.
  const slash = procedure.lastIndexOf("/");
  return slash > 0
    ? { "rpc.service": procedure.slice(1, slash), "rpc.method": procedure.slice(slash + 1) }
    : { "rpc.service": "_OTHER", "rpc.method": "_OTHER" };
}

/**
 * createDecisionMetrics returns the metrics of one decision core on `meter`.
 * With `withProcedure`, decisions carry `rpc.service` and `rpc.method`
 * (at most `maxMetricsProcedures` distinct ones). `expiryWarningDays` is the
 * window of `certgate.certificates.expiring`.
 */
export function createDecisionMetrics(
  meter: MetricsMeter,
  options: { withProcedure: boolean; expiryWarningDays: number; now: () => number },
): DecisionMetrics {
  const registry = registryOf(meter);
  const lookups = meter.createHistogram("certgate.store.lookup.duration", {
    description: "Duration of certificate store look-ups that left the per-connection cache.",
    unit: "s",
    advice: {
      explicitBucketBoundaries: [
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
      ],
    },
  });
  const verdicts: Record<string, MetricsAttributes> = {
    admitted: Object.freeze({ "certgate.store.verdict": "admitted" }),
    refused: Object.freeze({ "certgate.store.verdict": "refused" }),
    error: Object.freeze({ "certgate.store.verdict": "error" }),
  };

  function slotsOf(rpc: MetricsAttributes): Slots {
    const byVia = (result: string) => {
      const slots: Record<string, Slot> = {};
      for (const via of vias) {
        slots[via] = registry.slot(
          Object.freeze({ "certgate.decision.result": result, "certgate.decision.via": via, ...rpc }),
        );
      }
      return slots;
    };
    const maps = () => Object.fromEntries(vias.map((via) => [via, new Map<string, Slot>()]));
    return { admitted: byVia("admitted"), open: byVia("open"), refused: maps(), reportOnly: maps(), rpc };
  }

  const all = slotsOf({});
  const perProcedure = new Map<string, Slots>();
  let other: Slots | undefined;
  const expiring = trackExpiring(meter, options.expiryWarningDays, options.now);

  function slotsFor(procedure: string | undefined): Slots {
    if (!options.withProcedure || procedure === undefined) return all;
    let slots = perProcedure.get(procedure);
    if (slots === undefined) {
      if (perProcedure.size >= maxMetricsProcedures) {
        other ??= slotsOf(rpcAttributes(""));
        return other;
      }
      slots = slotsOf(rpcAttributes(procedure));
      perProcedure.set(procedure, slots);
    }
    return slots;
  }

  function refusedSlot(slots: Slots, reportOnly: boolean, via: DecisionVia, reason: string): Slot {
    const byReason = (reportOnly ? slots.reportOnly : slots.refused)[via] as Map<string, Slot>;
    let slot = byReason.get(reason);
    if (slot !== undefined) return slot;
    // A store's own reasons are `refused`, as clients see them: bounded.
    const shown = publicReason(reason);
    slot = byReason.get(shown);
    if (slot === undefined) {
      slot = registry.slot(
        Object.freeze({
          "certgate.decision.result": reportOnly ? "report_only" : "refused",
          "certgate.decision.via": via,
          "certgate.decision.reason": shown,
          ...slots.rpc,
        }),
      );
      byReason.set(shown, slot);
    }
    return slot;
  }

  return {
    decided(decision, via, procedure) {
      const slots = slotsFor(procedure);
      if (decision === undefined) {
        (slots.open[via] as Slot).count++;
        return;
      }
      if (decision.kind === "admitted") {
        (slots.admitted[via] as Slot).count++;
        expiring.seen(decision.certificate);
        return;
      }
      refusedSlot(slots, decision.reportOnly === true, via, decision.reason).count++;
    },
    lookedUp(ms, verdict) {
      lookups.record(ms / 1000, verdicts[verdict.kind]);
    },
  };
}

interface Seen {
  readonly notAfter: number;
  // When it was last noted, and in which collection interval.
  at: number;
  generation: number;
}

// One tracker per meter and window: the gate and the interceptor of one
// server share it, so that a certificate is counted once.
const trackers = new WeakMap<MetricsMeter, Map<number, { seen(certificate: Certificate): void }>>();

function trackExpiring(meter: MetricsMeter, days: number, now: () => number): { seen(certificate: Certificate): void } {
  let byWindow = trackers.get(meter);
  if (byWindow === undefined) {
    byWindow = new Map();
    trackers.set(meter, byWindow);
  }
  const existing = byWindow.get(days);
  if (existing !== undefined) return existing;
  // By SHA-256, oldest sighting first (a sighting moves its entry to the end).
  const seen = new Map<string, Seen>();
  const windowMs = days * day;
  const attributes = Object.freeze({ "certgate.expiry_warning.days": days });
  // Bumped by every collection: a certificate is noted (with a clock read)
  // once per collection interval, so that a warm call costs one map read.
  let generation = 0;
  const tracker = {
    seen(certificate: Certificate): void {
      const entry = seen.get(certificate.sha256);
      if (entry !== undefined && entry.generation === generation) return;
      if (entry !== undefined) seen.delete(certificate.sha256);
      seen.set(certificate.sha256, { notAfter: certificate.notAfter.getTime(), at: now(), generation });
      if (seen.size > maxTrackedCertificates) {
        for (const key of seen.keys()) {
          seen.delete(key);
          break;
        }
      }
    },
  };
  observeGauge(
    meter,
    "certgate.certificates.expiring",
    {
      description: "Admitted client certificates seen in the last 24 hours that expire within the warning window.",
      unit: "{certificate}",
    },
    (result) => {
      generation++;
      const t = now();
      let count = 0;
      for (const [key, entry] of seen) {
        if (!(t - entry.at < day)) {
          seen.delete(key);
          continue;
        }
        if (entry.notAfter > t && entry.notAfter - t <= windowMs) count++;
      }
      result.observe(count, attributes);
    },
  );
  byWindow.set(days, tracker);
  return tracker;
}
