// The rows of BENCHMARKS.md's summary table about the stores, revocation and
// the forward-auth proxy, in its order.
import {
  count,
  duration,
  from,
  mid,
  missed,
  ns,
  num,
  nums,
  range,
  record,
  type ReportRowSpec,
  sig3,
} from "./report-format.js";
import { fixed } from "./stats.js";

// Folder store figures: the sizes measured, and the repeated load of the
// largest (absent from runs saved before it was handed back).
function directoryFigures(d: unknown): string {
  const sizes = (Array.isArray(d) ? d : (record(d).sizes ?? [])) as Record<string, number>[];
  const largest = sizes.at(-1);
  if (largest === undefined) return "n/a";
  const repeated = record(record(d).repeated);
  const over = nums(repeated.overBaseMs);
  const target = num(repeated.targetMs ?? 3000);
  const ready =
    over.length > 0
      ? `${range(over, (ms) => fixed(ms / 1000, 1))} s (${over.filter((ms) => ms <= target).length} of ${over.length})`
      : `${fixed(num(largest.loadMs) / 1000, 1)} s (one run)`;
  const rss = nums(repeated.rssBytesPerCertificate);
  const scaled = sizes.filter((s) => num(s.count) >= 1000);
  return [
    ready,
    `${range(rss.length > 0 ? rss : [num(largest.rssBytesPerCertificate)], (b) => fixed(b, 0))} B/cert`,
    `${range(
      scaled.flatMap((s) => [num(s.applyAddMs), num(s.applyReplaceMs)]),
      (ms) => fixed(ms, 1),
    )} ms`,
    `${range(
      scaled.map((s) => num(s.hitNs)),
      ns,
    )} ns at ${count(num(scaled[0]?.count))} to ${count(num(largest.count))}`,
  ].join(", ");
}

// The responder requests per second of the refresh, from the data or, in
// runs saved before it was handed back, from the section's line.
function refreshRate(d: unknown, lines: readonly string[]): number {
  const rate = num(record(record(d).refresh).perSecond);
  if (Number.isFinite(rate)) return rate;
  const match = lines.map((l) => /([\d.]+)\/s on average/.exec(l)).find((m) => m !== null);
  return match === undefined ? Number.NaN : Number(match?.[1]);
}

/** storeRows are the rows of BENCHMARKS.md's table from the folder store on, in its order. */
export const storeRows = (lines: (section: string) => readonly string[]): ReportRowSpec[] => [
  {
    measured: "Folder store at 100,000 certificates",
    target:
      "admit-ready ≤ 3 s over a one-certificate store in 5 of 5 runs, ≤ 500 B/cert, a change ≤ 50 ms, flat look-up",
    sections: ["directory-store"],
    figure: (data) => from(data, "directory-store", directoryFigures),
  },
  {
    measured: "Store server memory per certificate at 100,000",
    target: "≤ 500 B RSS",
    sections: ["store-server-memory"],
    figure: (data) =>
      from(data, "store-server-memory", (d) => {
        const r = record(d);
        const per = (stage: string) =>
          (num(record(record(r.many)[stage]).rss) - num(record(record(r.one)[stage]).rss)) / (num(r.count) - 1);
        const figures = ["started", "list", "watch", "verify"].map(per);
        return `${figures.map((b) => fixed(b, 0)).join(" / ")} B after start / list / watch / verify${missed(Math.max(...figures) <= 500)}`;
      }),
  },
  {
    measured: "Deletion → first refused call on another API server (mirror)",
    target: "< 1 s",
    sections: ["remote-store"],
    figure: (data) =>
      from(data, "remote-store", (d) => {
        const deletion = record(record(d).deletionMs);
        const worst = num(deletion.worst);
        return `median ${sig3(num(deletion.median))} ms, worst ${sig3(worst)} ms of ${nums(deletion.samples).length}${missed(worst < 1000)}`;
      }),
  },
  {
    measured: "API server on the mirrored remote store against a thumbprint store",
    target: "≥ 0.97 calls/s",
    sections: ["remote-store"],
    figure: (data) =>
      from(data, "remote-store", (d) => {
        const ratio = num(record(record(record(d).rate).ratio).median);
        return `${fixed(ratio, 3)}${missed(ratio >= 0.97)}`;
      }),
  },
  {
    measured: "`ListCertificates` with `expires_before` over 10,000 certificates",
    target: "none",
    sections: ["expiring-list"],
    figure: (data) =>
      from(data, "expiring-list", (d) => {
        const r = record(d);
        return `${duration(mid(r.coldMs))} cold, ${duration(mid(r.warmMs))} warm, against ${duration(mid(r.plainMs))} unfiltered`;
      }),
  },
  {
    measured: "Revocation across PostgreSQL replicas (A deletes, a mirror of B refuses)",
    target: "median < 50 ms, worst < 1 s",
    sections: ["postgres-store"],
    figure: (data) =>
      from(data, "postgres-store", (d) => {
        const r = record(record(d).revocationMs);
        const [m, worst] = [num(r.median), num(r.worst)];
        return `median ${sig3(m)} ms, worst ${sig3(worst)} ms${missed(m < 50 && worst < 1000)}`;
      }),
  },
  {
    measured: "A new mirror's snapshot of 100,000 certificates from a PostgreSQL replica",
    target: "< 3 s",
    sections: ["postgres-store"],
    figure: (data) =>
      from(data, "postgres-store", (d) => {
        const snapshot = mid(record(record(d).hundredThousand).mirrorSnapshotMs);
        return `${duration(snapshot)}${missed(snapshot < 3000)}`;
      }),
  },
  {
    measured: "`certgate authz` forward-auth round trip on loopback",
    target: "p50 ≤ 100 µs",
    sections: ["authz-proxy"],
    figure: (data) =>
      from(data, "authz-proxy", (d) => {
        const direct = record(record(d).direct);
        const p50 = num(direct.p50Ms) * 1000;
        return `p50 ${fixed(p50, 0)} µs, p99 ${fixed(num(direct.p99Ms) * 1000, 0)} µs${missed(p50 <= 100)}`;
      }),
  },
  {
    measured: 'Warm connection with `ocsp: "hard-fail"` against without, in process',
    target: "≤ 1.02",
    sections: ["online-revocation"],
    figure: (data) =>
      from(data, "online-revocation", (d) => {
        const r = record(d);
        const refresh = record(r.refresh);
        const warm = num(r.warmRatio);
        const waited = num(refresh.waited);
        return `${fixed(warm, 2)}${missed(warm <= 1.02)}; first seen with a cached status ${fixed(num(r.firstRatio), 2)}; ${num(refresh.count).toLocaleString("en")} certificates refreshed at ${fixed(refreshRate(d, lines("online-revocation")), 1)} responder requests/s, ${waited === 0 ? "none" : fixed(waited, 0)} waited`;
      }),
  },
  {
    measured: "Remote store's mirror at 1,000,000: ready; RSS per certificate; warm look-up at 1k and 1M",
    target: "≤ 10 s; ≤ 100 B; ≤ 1 µs, flat",
    sections: ["mirror-scale"],
    figure: (data) =>
      from(data, "mirror-scale", (d) => {
        const sizes = (record(d).sizes ?? []) as Record<string, number>[];
        const [small, large] = [sizes[0], sizes.at(-1)];
        const ready = num(large?.readyMs);
        const rss = num(large?.rssBytesPerCertificate);
        const hits = [num(small?.hitNs), num(large?.hitNs)];
        return `${duration(ready)}${missed(ready <= 10_000)}; ${fixed(rss, 0)} B${missed(rss <= 100)}; ${ns(hits[0] ?? Number.NaN)} and ${ns(hits[1] ?? Number.NaN)} ns${missed(Math.max(...hits) <= 1000)}`;
      }),
  },
  {
    measured: "Fan-out: one replica, 500 mirrors; a deletion refuses the next call on every mirror",
    target:
      "p50 < 50 ms, p99 < 150 ms; a burst of 10,000 deletions, none missed; replica CPU per watcher per change flat",
    sections: ["mirror-scale"],
    figure: (data) =>
      from(data, "mirror-scale", (d) => {
        const fan = record(record(d).fan);
        const latency = record(fan.latencyMs);
        const [p50, p99] = [num(latency.p50), num(latency.p99)];
        const admitted = num(record(fan.burst).admittedAfter);
        const cpu = record(fan.cpuUsPerWatcherChange);
        return [
          `p50 ${sig3(p50)} ms, p99 ${sig3(p99)} ms${missed(p50 < 50 && p99 < 150)}`,
          admitted === 0 ? "none missed" : `${fixed(admitted, 0)} missed (**missed**)`,
          `${fixed(num(cpu.few), 1)} µs at ${fixed(num(cpu.fewWatchers), 0)} watchers, ${fixed(num(cpu.many), 1)} µs at ${fixed(num(fan.mirrors), 0)}`,
        ].join("; ");
      }),
  },
  {
    measured: "Bulk load of 1,000,000 certificates into PostgreSQL (`CreateCertificates`, 1000 a call)",
    target: "≥ 10,000/s",
    sections: ["postgres-million"],
    figure: (data) =>
      from(data, "postgres-million", (d) => {
        const bulk = record(record(d).bulkLoad);
        const rate = num(bulk.perSecond);
        return `${Math.round(rate).toLocaleString("en")}/s (${fixed(num(bulk.seconds), 0)} s)${missed(rate >= 10_000)}`;
      }),
  },
  {
    measured:
      "PostgreSQL replica at 1,000,000: memory per certificate; `ListCertificates` page at the start and the end",
    target: "≤ 300 B; constant",
    sections: ["postgres-million"],
    figure: (data) =>
      from(data, "postgres-million", (d) => {
        const perCertificate = num(record(record(d).memory).perCertificate);
        const pages = record(record(d).pageMs);
        return `${fixed(perCertificate, 0)} B${missed(perCertificate <= 300)}; ${fixed(num(pages["first page"]), 1)} and ${fixed(num(pages["page at the end"]), 1)} ms`;
      }),
  },
];
