// The rows of BENCHMARKS.md's summary table, in its order, each built from
// the data (what a section hands back for --json) of the sections it names:
// first those of certgate's cost per call, then those of the stores.
import { from, missed, ns, num, record, type ReportRowSpec, share, variant } from "./report-format.js";
import { fixed, percent } from "./stats.js";
import { storeRows } from "./report-store-rows.js";

const decisionNs = (d: unknown, name: string): number =>
  num(((record(d).results ?? []) as { name: string; netNs: number }[]).find((r) => r.name.startsWith(name))?.netNs);

const profileShare = (d: unknown, protocol: string, name: string): number =>
  num(
    ((Array.isArray(d) ? d : []) as { protocol: string; variant: string; share: number }[]).find(
      (r) => r.protocol === protocol && r.variant === name,
    )?.share,
  );

/** reportRows are the rows of BENCHMARKS.md's table that `npm run bench` measures, in its order. */
export const reportRows = (lines: (section: string) => readonly string[]): ReportRowSpec[] => [
  {
    measured: "One decision on a warm connection, in process",
    target: "< 1 µs",
    sections: ["decision-ns"],
    figure: (data) =>
      from(data, "decision-ns", (d) => {
        const warm = decisionNs(d, "decide(peer), admitted");
        const gate = decisionNs(d, "peerCertificateContextValues") + decisionNs(d, "gate(context), admitted");
        return `${ns(warm)} ns${missed(warm < 1000)} (${ns(gate)} ns per admitted call through the gate)`;
      }),
  },
  {
    measured: "Server CPU certgate adds per admitted call, persistent HTTP/2, Connect",
    target: "≤ 2%",
    sections: ["interceptor-overhead", "certgate-share"],
    figure: (data) => [
      ...from(data, "interceptor-overhead", (d) => {
        const connect = record(d).connect;
        const ratios = ["gate", "interceptor"].map((v) => variant(connect, v)?.cpuRatio);
        const deviation = Math.max(
          ...ratios.flatMap((r) => (r === undefined ? [] : [r.min, r.max])).map((r) => Math.abs(r - 1)),
        );
        const spreadText = Number.isFinite(deviation) ? `, ±${fixed(deviation * 100, 0)}% spread` : "";
        const [gate, interceptor] = ratios.map((r) => (r === undefined ? "n/a" : percent(r.median)));
        return `gate ${gate}, interceptor ${interceptor} (A/B medians${spreadText})`;
      }),
      ...from(
        data,
        "certgate-share",
        (d) =>
          `${share(profileShare(d, "connect", "gate"))} / ${share(profileShare(d, "connect", "interceptor"))} of busy time in a CPU profile`,
      ),
    ],
  },
  {
    measured: "A refused call against an admitted one, persistent HTTP/2 (fast refusal path)",
    target: "≤ 0.5×",
    sections: ["refusal-cost"],
    figure: (data) =>
      from(data, "refusal-cost", (d) => {
        const ratio = (protocol: string) => {
          const r = variant(record(d)[protocol], "fast")?.cpuRatio?.median;
          return r === undefined ? "n/a" : `${fixed(r, 2)}×${missed(r <= 0.5)}`;
        };
        return `${ratio("connect")} Connect, ${ratio("grpc")} gRPC`;
      }),
  },
  {
    measured: "certgate's work per new mTLS connection, against a bare handshake and call",
    target: "returning client ≤ 3%, first-seen certificate ≤ 6%",
    sections: ["new-connection"],
    figure: (data) =>
      from(data, "new-connection", (d) => {
        const base = variant(record(d).connect, "baseline")?.serverUsPerCall;
        const work = record(record(d).inProcess);
        const part = (us: number, limit: number) =>
          base === undefined
            ? `${fixed(us, 1)} µs`
            : `${fixed(us, 1)} µs (${percent(1 + us / base)})${missed(us / base <= limit)}`;
        return `returning ${part(num(work.returningUs), 0.03)}, first-seen ${part(num(work.firstSeenUs), 0.06)}`;
      }),
  },
  {
    measured: "certgate/grpc-js per admitted call on a grpc-js server",
    target: "≤ 2%",
    sections: ["grpc-js", "grpc-js-ns", "certgate-share"],
    figure: (data) => [
      ...from(data, "grpc-js", (d) => {
        const added = variant(record(d).overhead, "grpc-js+certgate")?.cpuRatio?.median;
        return `${added === undefined ? "n/a" : percent(added)} (A/B median)`;
      }),
      ...from(data, "certgate-share", (d) => `${share(profileShare(d, "grpc", "grpc-js"))} of busy time (profile)`),
      ...from(data, "grpc-js-ns", (d) => {
        const rows = (record(d).rows ?? []) as [string, number][];
        return `${ns(num(rows.find((r) => r[0] === "certgate interceptor, admitted")?.[1]))} ns in process`;
      }),
      ...from(data, "grpc-js", (d) => {
        const admitted = variant(record(d).refusal, "admitted")?.serverUsPerCall;
        const refused = variant(record(d).refusal, "refused-other")?.serverUsPerCall;
        const ratio = admitted === undefined || refused === undefined ? "n/a" : `${fixed(refused / admitted, 2)}×`;
        return `refused calls ${ratio} an admitted one`;
      }),
    ],
  },
  {
    measured: "OpenTelemetry metrics per admitted call",
    target: "within the 2% budget",
    sections: ["metrics-cost"],
    figure: (data) =>
      from(data, "metrics-cost", (d) => {
        const pairs = (record(record(d).inProcess).pairs ?? []) as { name: string; offNs: number; onNs: number }[];
        const gate = pairs.find((p) => p.name === "gate(context), admitted");
        const added = num(gate?.onNs) - num(gate?.offNs);
        const callUs = variant(record(d).connect, "gate")?.serverUsPerCall ?? Number.NaN;
        const ab = variant(record(d).connect, "gate-metrics")?.cpuRatio?.median;
        return `${added >= 0 ? "+" : ""}${ns(added)} ns through the gate (about ${fixed((added / 1000 / callUs) * 100, 2)}% of a call); A/B ${ab === undefined ? "n/a" : percent(ab)}${missed(ab === undefined ? undefined : ab <= 1.02)}`;
      }),
  },
  {
    measured: "Full validation policy against the bare thumbprint check, persistent connections",
    target: "≤ 5% calls/s",
    sections: ["policy"],
    figure: (data) =>
      from(data, "policy", (d) => {
        const rate = variant(record(d).connect, "policy")?.rateRatio?.median;
        const inProcess = record(record(d).inProcess);
        const warm = (name: string) => num(record(inProcess[name]).warmNs);
        return `${rate === undefined ? "n/a" : percent(rate)} calls/s${missed(rate === undefined ? undefined : rate >= 0.95)}; ${ns(warm("policy"))} against ${ns(warm("thumbprint"))} ns in process`;
      }),
  },
  ...storeRows(lines),
];
