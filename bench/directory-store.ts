// directory-store: the folder store at 1k / 10k / 100k certificate files:
// time until admit-ready, resident memory per certificate, look-up time, and
// the time to apply one changed file.
//
// How the folders are made: signing 100,000 certificates with @peculiar/x509
// would take minutes, and the store never checks a leaf file's signature (it
// hashes the DER to index it; see src/stores/directory/der.ts). So a few real
// certificates are signed once and each file is one of them with the last
// four bytes of its serial number replaced by the file's number: every file
// is a distinct, well-formed certificate with a distinct thumbprint (its
// signature no longer verifies, which nothing here looks at).
//
// Each size is measured in a child process of its own (forked with
// --expose-gc), so that one size's garbage does not blur the next one's
// resident memory.
//
// Run alone: npx tsx bench/directory-store.ts [--quick]
import { fork } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { getHeapSpaceStatistics } from "node:v8";
import { parseCertificate, type Certificate } from "../src/core/certificate.js";
import { createDevCa, issueDevCertificate } from "../src/dev-certificates.js";
import { createDirectoryStore } from "../src/stores/directory-store.js";
import { fixed, median, table } from "./stats.js";

/** The issue's targets. */
const targets = { loadMs: 3000, bytesPerCertificate: 500, applyMs: 50 };

interface Figures {
  readonly count: number;
  readonly loadMs: number;
  /** CPU time (user + system) of the load: steadier than wall time on a shared machine. */
  readonly loadCpuMs: number;
  readonly rssBytesPerCertificate: number;
  readonly heapBytesPerCertificate: number;
  readonly hitNs: number;
  readonly missNs: number;
  readonly applyAddMs: number;
  readonly applyReplaceMs: number;
  readonly rescanMs: number;
  /** V8's new space before and after the load, MB: young-generation growth, not the store's. */
  readonly newSpaceMb: readonly [number, number];
}

const childFlag = "--directory-store-child";

// Finds the serial number's last 4 bytes: Certificate SEQUENCE, tbsCertificate
// SEQUENCE, [0] version (5 bytes), then INTEGER serial.
function serialEnd(der: Uint8Array): number {
  const skipHeader = (at: number) => at + 2 + ((der[at + 1]! & 0x80) === 0 ? 0 : der[at + 1]! & 0x7f);
  let at = skipHeader(skipHeader(0));
  if (der[at] === 0xa0) at += 2 + der[at + 1]!;
  if (der[at] !== 0x02) throw new Error("unexpected DER layout");
  return at + 2 + der[at + 1]!;
}

/**
 * variant copies a certificate with the last four bytes of its serial number
 * set to `n`: a distinct certificate with its own thumbprint (whose signature
 * no longer verifies), for sections that need many quickly.
 */
export function variant(template: Uint8Array, n: number): Uint8Array {
  const der = new Uint8Array(template);
  new DataView(der.buffer).setUint32(serialEnd(der) - 4, n);
  return der;
}

function pem(der: Uint8Array): string {
  const body = Buffer.from(der)
    .toString("base64")
    .match(/.{1,64}/g)!
    .join("\n");
  return `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`;
}

export async function templates(): Promise<Uint8Array[]> {
  const ca = await createDevCa({ commonName: "bench CA" });
  const out: Uint8Array[] = [];
  for (let i = 0; i < 4; i++) out.push((await issueDevCertificate(ca, { commonName: `client ${i}` })).der);
  return out;
}

export function makeFolder(count: number, dies: Uint8Array[]): string {
  const dir = mkdtempSync(join(tmpdir(), `certgate-bench-${count}-`));
  for (let i = 0; i < count; i++) {
    writeFileSync(join(dir, `client-${String(i).padStart(6, "0")}.pem`), pem(variant(dies[i % dies.length]!, i)));
  }
  return dir;
}

// The child: loads one folder and measures.
async function measure(dir: string, count: number, template: Uint8Array): Promise<Figures> {
  const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
  const settle = () => {
    for (let i = 0; i < 3; i++) gc();
  };
  // A running server's young generation has long grown to its working size
  // (V8 doubles it under allocation, up to 32 MB here). A fresh child's has
  // not, and loading any folder would grow it and charge that to the store:
  // grow it first with short-lived garbage, so the baseline is a warm one.
  const ring: unknown[] = new Array(4096);
  for (let i = 0; i < 20_000_000; i++) ring[i & 4095] = { i, s: `x${i & 1023}` };
  settle();
  const newSpace = () =>
    Math.round((getHeapSpaceStatistics().find((x) => x.space_name === "new_space")?.space_size ?? 0) / 1e6);
  const newSpaceBefore = newSpace();
  const before = process.memoryUsage();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const store = await createDirectoryStore({ directory: dir, rescanIntervalMs: 0, debounceMs: 0, onProblem: () => {} });
  const loadMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const loadCpuMs = (cpu.user + cpu.system) / 1000;
  settle();
  const after = process.memoryUsage();
  const newSpaceAfter = newSpace();
  const heap = (m: NodeJS.MemoryUsage) => m.heapUsed + m.external; // external includes arrayBuffers
  if (store.stats().certificates !== count) throw new Error(`loaded ${store.stats().certificates} of ${count}`);

  const signal = new AbortController().signal;
  const present: Certificate[] = [];
  const absent: Certificate[] = [];
  for (let i = 0; i < 256; i++) {
    present.push(
      parseCertificate(variant(template, Math.floor((i * count) / 256) - (Math.floor((i * count) / 256) % 4))),
    );
    absent.push(parseCertificate(variant(template, 10_000_000 + i)));
  }
  async function nsPerLookup(certs: Certificate[], expect: string): Promise<number> {
    const rounds: number[] = [];
    for (let r = 0; r < 7; r++) {
      const n = 50_000;
      const t = performance.now();
      for (let i = 0; i < n; i++) {
        const v = await store.lookup(certs[i & 255]!, signal);
        if (v.kind !== expect) throw new Error(`lookup said ${v.kind}, expected ${expect}`);
      }
      rounds.push(((performance.now() - t) * 1e6) / n);
    }
    // The fastest round: on a shared machine the others measure the neighbours.
    return Math.min(...rounds);
  }
  const hitNs = await nsPerLookup(present, "admitted");
  const missNs = await nsPerLookup(absent, "refused");

  // One changed file, from the write to the revision bump (fs.watch latency
  // and the apply, debounce 0).
  async function timeChange(change: () => void): Promise<number> {
    const seen = new Promise<number>((resolve) => {
      const off = store.onChange(() => {
        off();
        resolve(performance.now());
      });
    });
    const t = performance.now();
    change();
    return (await seen) - t;
  }
  const adds: number[] = [];
  const replaces: number[] = [];
  for (let i = 0; i < 7; i++) {
    adds.push(
      await timeChange(() => writeFileSync(join(dir, `added-${i}.pem`), pem(variant(template, 20_000_000 + i)))),
    );
    replaces.push(
      await timeChange(() => writeFileSync(join(dir, "client-000001.pem"), pem(variant(template, 30_000_000 + i)))),
    );
  }
  const r0 = performance.now();
  await store.rescan();
  const rescanMs = performance.now() - r0;
  await store.close();
  return {
    count,
    loadMs,
    loadCpuMs,
    rssBytesPerCertificate: (after.rss - before.rss) / count,
    heapBytesPerCertificate: (heap(after) - heap(before)) / count,
    hitNs,
    missNs,
    applyAddMs: median(adds),
    applyReplaceMs: median(replaces),
    rescanMs,
    newSpaceMb: [newSpaceBefore, newSpaceAfter],
  };
}

function runChild(dir: string, count: number, template: Uint8Array): Promise<Figures> {
  return new Promise((resolve, reject) => {
    const child = fork(
      fileURLToPath(import.meta.url),
      [childFlag, dir, String(count), Buffer.from(template).toString("base64")],
      {
        execArgv: [...process.execArgv, "--expose-gc"],
        stdio: ["ignore", "inherit", "inherit", "ipc"],
      },
    );
    child.once("message", (m) => resolve(m as Figures));
    child.once("exit", (code) =>
      code === 0 ? undefined : reject(new Error(`child for ${count} exited with ${code}`)),
    );
  });
}

/**
 * run measures the folder store at 1k, 10k and 100k files (1k and 10k with
 * `quick`), each in a child process, and returns the figures as a bench
 * section (see bench/section.ts).
 */
export async function run(options: { quick?: boolean; log?: (line: string) => void } = {}) {
  const log = options.log ?? ((line: string) => console.log(`  · ${line}`));
  const sizes = options.quick === true ? [1, 1_000, 10_000] : [1, 1_000, 10_000, 100_000];
  // The one-certificate store and the largest are measured in five runs
  // each (a fresh child per run): the target holds in five of five.
  const runs = options.quick === true ? 2 : 5;
  const dies = await templates();
  const figures: Figures[] = [];
  const repeated = new Map<number, Figures[]>();
  for (const count of sizes) {
    const times = count === 1 || count === sizes[sizes.length - 1] ? runs : 1;
    const all: Figures[] = [];
    for (let r = 0; r < times; r++) {
      // A fresh folder per run: a run writes files into its folder.
      log(`writing ${count} certificate files`);
      const dir = makeFolder(count, dies);
      try {
        log(`measuring ${count}${times > 1 ? ` (run ${r + 1}/${times})` : ""}`);
        all.push(await runChild(dir, count, dies[0]!));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
    repeated.set(count, all);
    // The run of median load time stands for the size in the table.
    figures.push([...all].sort((a, b) => a.loadMs - b.loadMs)[Math.floor(all.length / 2)]!);
  }
  const largest = sizes[sizes.length - 1]!;
  const baseMs = median((repeated.get(1) ?? []).map((f) => f.loadMs));
  const overBase = (repeated.get(largest) ?? []).map((f) => f.loadMs - baseMs);
  const within = overBase.filter((ms) => ms <= targets.loadMs).length;
  const rssRuns = (repeated.get(largest) ?? []).map((f) => f.rssBytesPerCertificate);
  const warnings: string[] = [];
  for (const f of figures) {
    if (f.count === largest && within < overBase.length)
      warnings.push(
        `load of ${largest} over a one-certificate store within ${targets.loadMs} ms in ${within} of ${overBase.length} runs`,
      );
    // At 1k, a fixed ~1 MB (allocator arenas, code) outweighs the index itself.
    if (
      f.count >= 10_000 &&
      Math.max(f.rssBytesPerCertificate, ...(f.count === largest ? rssRuns : [])) > targets.bytesPerCertificate
    )
      warnings.push(
        `${f.count}: ${fixed(f.rssBytesPerCertificate, 0)} B RSS per certificate (target ${targets.bytesPerCertificate})`,
      );
  }
  const lines = [
    `${availableParallelism()} cores (load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(
        " ",
      )}), Node ${process.version}; targets: 100k admit-ready <= ${targets.loadMs} ms, <= ${targets.bytesPerCertificate} B per certificate, one change <= ${targets.applyMs} ms, flat look-up`,
    "",
    ...table(
      [
        "files",
        "load ms",
        "load CPU ms",
        "RSS B/cert",
        "heap B/cert",
        "new space MB",
        "hit ns",
        "miss ns",
        "add ms",
        "replace ms",
        "rescan ms",
      ],
      figures.map((f) => [
        String(f.count),
        fixed(f.loadMs, 0),
        fixed(f.loadCpuMs, 0),
        fixed(f.rssBytesPerCertificate, 0),
        fixed(f.heapBytesPerCertificate, 0),
        `${f.newSpaceMb[0]}->${f.newSpaceMb[1]}`,
        fixed(f.hitNs, 0),
        fixed(f.missNs, 0),
        fixed(f.applyAddMs, 1),
        fixed(f.applyReplaceMs, 1),
        fixed(f.rescanMs, 0),
      ]),
    ),
    "",
    `${largest} files, ${overBase.length} runs: admit-ready over a one-certificate store (median ${fixed(baseMs, 0)} ms) ${overBase.map((ms) => fixed(ms, 0)).join(", ")} ms: ${within} of ${overBase.length} within ${targets.loadMs} ms; RSS B/cert ${rssRuns.map((b) => fixed(b, 0)).join(", ")}`,
    "",
    "load: createDirectoryStore() until it resolves (admit-ready), wall and CPU time. hit/miss: one awaited store.lookup() of a",
    "certificate in / not in the folder (fastest of 7 rounds of 50k). add/replace: a file written until the revision bump (fs.watch and",
    "the incremental apply, debounceMs 0). rescan: a full signature check of every file (the periodic fallback).",
    "RSS B/cert: resident memory after the load less before it (after GC, young generation grown beforehand);",
    "heap B/cert: V8 heap plus external memory (typed arrays) the same way.",
  ];
  return {
    title: "directory-store: folder store at scale",
    lines,
    warnings,
    data: {
      sizes: figures,
      repeated: {
        count: largest,
        baseMs,
        overBaseMs: overBase,
        rssBytesPerCertificate: rssRuns,
        targetMs: targets.loadMs,
      },
    },
  };
}

if (process.argv.includes(childFlag)) {
  const [dir, count, template] = process.argv.slice(process.argv.indexOf(childFlag) + 1);
  // The store's watcher and timers do not keep a process alive; a server would.
  setInterval(() => {}, 60_000);
  const figures = await measure(dir!, Number(count), new Uint8Array(Buffer.from(template!, "base64")));
  process.send!(figures, () => process.exit(0));
} else if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const result = await run({ quick: process.argv.includes("--quick") });
  console.log(`\n## ${result.title}\n`);
  for (const line of [...result.lines, ...result.warnings.map((w) => `warning: ${w}`)]) console.log(line);
}
