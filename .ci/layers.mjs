// Checks the architecture's one data path: a module under src/ imports only
// from its own layer or the layers below it (and never a framework from the
// neutral layers). Exits 1 naming every import that climbs.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";

const layers = [
  ["core", "gen"],
  ["policy", "proxy", "stores", "client"],
  ["decision"],
  ["connect", "grpc-js"],
  ["service", "authz"],
  ["cli"],
];
const levelOf = (folder) => layers.findIndex((names) => names.includes(folder));
const neutral = new Set(["core", "policy", "proxy", "stores", "client", "decision"]);
const root = "src";
const problems = [];
function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (path.endsWith(".ts")) check(path);
  }
}
function check(file) {
  const parts = relative(root, file).split("/");
  if (parts.length < 2) return; // entry points (index.ts, core.ts, ...) may import anything
  const from = parts[0];
  const level = levelOf(from);
  const text = readFileSync(file, "utf8");
  for (const m of text.matchAll(/(?:from|import)\s*\(?\s*["']([^"']+)["']/g)) {
    const spec = m[1];
    if (spec.startsWith(".")) {
      const target = relative(root, normalize(join(dirname(file), spec))).split("/");
      if (target.length < 2) {
        if (from === "cli") continue; // the command line sits on top of everything
        problems.push(`${file}: imports the entry point ${spec}`);
        continue;
      }
      const to = target[0];
      if (levelOf(to) > level) problems.push(`${file}: imports ${spec} (${to} is above ${from})`);
    } else if (
      neutral.has(from) &&
      /^@(connectrpc|grpc)\//.test(spec) &&
      !((from === "stores" || from === "client") && spec.startsWith("@connectrpc/connect"))
    ) {
      problems.push(`${file}: imports the framework ${spec}`);
    }
  }
}
walk(root);
if (problems.length > 0) {
  console.error(`imports that climb the layers (${layers.map((l) => l.join(" | ")).join(" -> ")}):`);
  for (const p of problems) console.error(`  ${p}`);
  process.exit(1);
}
console.log("layers: every import goes down");
