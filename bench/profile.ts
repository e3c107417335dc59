/**
 * CpuProfile is the part of a V8 CPU profile (`.cpuprofile`, as written by
 * the inspector's `Profiler.stop` or `node --cpu-prof`) that bench/ reads.
 */
export interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }[];
  samples: number[];
  timeDeltas: number[];
}

/**
 * ProfileSummary is where a profile's samples went.
 */
export interface ProfileSummary {
  /** All sampled time, µs. */
  readonly totalUs: number;
  /** Sampled time not spent idle, µs. */
  readonly busyUs: number;
  /** Self time of frames whose URL matched, µs. */
  readonly matchedSelfUs: number;
  /** Self time per function label, µs, largest first. */
  readonly self: [string, number][];
  /** Inclusive time per matching function label, µs, largest first. */
  readonly inclusive: [string, number][];
}

type ProfileNode = CpuProfile["nodes"][number];

/**
 * frameLabel names a profile node: function, then a short file:line.
 */
export function frameLabel(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const path = url.replace(/^file:\/\//, "");
  // A dependency's own src/ (grpc-js has build/src/) is not certgate's.
  const file = path.includes("node_modules/")
    ? path.replace(/^.*node_modules\//, "")
    : path.replace(/^.*\/(src|bench)\//, "$1/");
  return `${functionName || "(anonymous)"} ${file}${file === "" ? "" : `:${lineNumber + 1}`}`;
}

/**
 * summarizeProfile attributes a profile's sampled time to functions: self
 * time for all, inclusive time for those whose URL passes `matches`.
 */
export function summarizeProfile(profile: CpuProfile, matches: (url: string) => boolean): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfById = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    selfById.set(id, (selfById.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  let totalUs = 0;
  let idleUs = 0;
  let matchedSelfUs = 0;
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const [id, us] of selfById) {
    const node = byId.get(id);
    if (node === undefined) continue;
    totalUs += us;
    const label = frameLabel(node);
    if (node.callFrame.functionName === "(idle)") idleUs += us;
    if (matches(node.callFrame.url)) matchedSelfUs += us;
    self.set(label, (self.get(label) ?? 0) + us);
    // Each label once per stack, so that recursion is not counted twice.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur);
      if (n === undefined) break;
      const l = frameLabel(n);
      if (!seen.has(l) && matches(n.callFrame.url)) {
        seen.add(l);
        inclusive.set(l, (inclusive.get(l) ?? 0) + us);
      }
    }
  }
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);
  return { totalUs, busyUs: totalUs - idleUs, matchedSelfUs, self: sorted(self), inclusive: sorted(inclusive) };
}

/**
 * isCertgateSource tells whether a profile frame's URL is certgate's own
 * source (src/, but not the generated code in src/gen/).
 */
export function isCertgateSource(url: string): boolean {
  return /\/src\//.test(url) && !url.includes("/src/gen/") && !url.includes("node_modules");
}

/**
 * inclusiveShare is the share of a profile's busy time whose stack holds a
 * frame passing `matches` anywhere: the work done on certgate's behalf,
 * native and library calls it makes included (self time alone misses
 * `getPeerCertificate()`, X509 parsing and hashing).
 */
export function inclusiveShare(profile: CpuProfile, matches: (url: string) => boolean): number {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const under = new Map<number, boolean>();
  const isUnder = (id: number): boolean => {
    const known = under.get(id);
    if (known !== undefined) return known;
    const node = byId.get(id);
    const p = parent.get(id);
    const result = node !== undefined && (matches(node.callFrame.url) || (p !== undefined && isUnder(p)));
    under.set(id, result);
    return result;
  };
  let busy = 0;
  let matched = 0;
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    if (byId.get(id)?.callFrame.functionName === "(idle)") return;
    busy += us;
    if (isUnder(id)) matched += us;
  });
  return busy === 0 ? NaN : matched / busy;
}
