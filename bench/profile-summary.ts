// npx tsx bench/profile-summary.ts FILE.cpuprofile [--top N] [--match TEXT]
//
// Summarizes a CPU profile written by `npm run bench -- --cpu-prof DIR`: the
// functions with the most self time, and the inclusive time of the functions
// whose location contains --match (by default, certgate's own src/).
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { isCertgateSource, summarizeProfile, type CpuProfile } from "./profile.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: "string" }, match: { type: "string" } },
});
const file = positionals[0];
if (file === undefined) {
  console.error("usage: npx tsx bench/profile-summary.ts FILE.cpuprofile [--top N] [--match TEXT]");
  process.exit(2);
}
const top = Number(values.top ?? 30);
const match = values.match;
const summary = summarizeProfile(
  JSON.parse(readFileSync(file, "utf8")) as CpuProfile,
  match === undefined ? isCertgateSource : (url) => url.includes(match),
);
const what = match === undefined ? "certgate's src/" : JSON.stringify(match);
const pct = (us: number) => `${((us / summary.totalUs) * 100).toFixed(2).padStart(6)}%`;
console.log(
  `${file}: ${(summary.totalUs / 1e6).toFixed(2)} s sampled, ${(summary.busyUs / 1e6).toFixed(2)} s busy (not idle)`,
);
console.log(
  `self time in ${what}: ${((summary.matchedSelfUs / summary.busyUs) * 100).toFixed(2)}% of busy time (not counting the garbage it makes)`,
);
console.log(`\nself time, top ${top} (% of all samples):`);
for (const [label, us] of summary.self.slice(0, top)) console.log(`${pct(us)}  ${label}`);
console.log(`\ninclusive time of functions in ${what} (% of all samples):`);
for (const [label, us] of summary.inclusive.slice(0, top)) console.log(`${pct(us)}  ${label}`);
