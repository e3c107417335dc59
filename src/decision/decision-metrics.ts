// The decision's metrics: a counter of decisions, the duration of store
// look-ups that left the per-connection cache, and a gauge of the admitted
// certificates that expire soon. Attribute objects are built once and reused,
// so that a warm admitted call costs one counter add, one map read and,
// with the expiry gauge, one clock read.
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
// A certificate seen again within this time is not noted again.
const seenResolution = 60_000;

// Attribute sets of one procedure (or of all, without `metricsProcedure`).
interface AttributeSets {
  readonly admitted: Record<string, MetricsAttributes>;
  readonly open: Record<string, MetricsAttributes>;
  // refused, then report-only, keyed by via + reason.
  readonly refused: Map<string, MetricsAttributes>;
}

function attributeSets(rpc: MetricsAttributes): AttributeSets {
  const byVia = (result: string) => {
    const sets: Record<string, MetricsAttributes> = {};
    for (const via of ["interceptor", "gate", "grpc-js"]) {
      sets[via] = Object.freeze({ "certgate.decision.result": result, "certgate.decision.via": via, ...rpc });
    }
    return sets;
  };
  return { admitted: byVia("admitted"), open: byVia("open"), refused: new Map() };
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
  const decisions = meter.createCounter("certgate.decisions", {
    description: "Calls decided by certgate, by result and refusal reason.",
    unit: "{decision}",
  });
  const lookups = meter.createHistogram("certgate.store.lookup.duration", {
    description: "Duration of certificate store look-ups that left the per-connection cache.",
    unit: "s",
    advice: { explicitBucketBoundaries: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] },
  });
  const verdicts: Record<string, MetricsAttributes> = {
    admitted: Object.freeze({ "certgate.store.verdict": "admitted" }),
    refused: Object.freeze({ "certgate.store.verdict": "refused" }),
    error: Object.freeze({ "certgate.store.verdict": "error" }),
  };
  const all = attributeSets({});
  const perProcedure = new Map<string, AttributeSets>();
  const other = attributeSets(rpcAttributes(""));
  const expiring = trackExpiring(meter, options.expiryWarningDays, options.now);

  function setsOf(procedure: string | undefined): AttributeSets {
    if (!options.withProcedure || procedure === undefined) return all;
    let sets = perProcedure.get(procedure);
    if (sets === undefined) {
      if (perProcedure.size >= maxMetricsProcedures) return other;
      sets = attributeSets(rpcAttributes(procedure));
      perProcedure.set(procedure, sets);
    }
    return sets;
  }

  return {
    decided(decision, via, procedure) {
      const sets = setsOf(procedure);
      if (decision === undefined) {
        decisions.add(1, sets.open[via]);
        return;
      }
      if (decision.kind === "admitted") {
        decisions.add(1, sets.admitted[via]);
        expiring.seen(decision.certificate);
        return;
      }
      const reportOnly = decision.reportOnly === true;
      // A store's own reasons are `refused`, as clients see them: bounded.
      const reason = publicReason(decision.reason);
      const key = `${reportOnly ? "r" : "x"}${via}\0${reason}`;
      let attributes = sets.refused.get(key);
      if (attributes === undefined) {
        attributes = Object.freeze({
          ...sets.admitted[via],
          "certgate.decision.result": reportOnly ? "report_only" : "refused",
          "certgate.decision.reason": reason,
        });
        sets.refused.set(key, attributes);
      }
      decisions.add(1, attributes);
    },
    lookedUp(ms, verdict) {
      lookups.record(ms / 1000, verdicts[verdict.kind]);
    },
  };
}

interface Seen {
  readonly notAfter: number;
  at: number;
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
  const tracker = {
    seen(certificate: Certificate): void {
      const t = now();
      const entry = seen.get(certificate.sha256);
      if (entry !== undefined && t - entry.at < seenResolution) return;
      if (entry !== undefined) seen.delete(certificate.sha256);
      seen.set(certificate.sha256, { notAfter: certificate.notAfter.getTime(), at: t });
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
