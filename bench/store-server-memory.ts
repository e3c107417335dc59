// store-server-memory: resident memory per stored certificate of the server
// that `certgate serve` runs (createCertificateStoreServer over a folder
// store), at 100k certificates against the same server holding one, after
// each kind of call has been made once: issue 9's measure of issue 3's
// 500 bytes per certificate.
//
// Each size runs in a child process of its own (--expose-gc); the client
// runs here, in the parent, so that its memory is not counted. The child
// collects garbage three times before each reading.
//
// Run alone: npx tsx bench/store-server-memory.ts [--quick]
// (CERTGATE_BENCH_STORE_COUNT=N measures N certificates instead of 100k.)
import { fork, type ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { getHeapSpaceStatistics } from "node:v8";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { CertificateStoreService } from "../src/gen/certgate/v1/certificate_store_pb.js";
import { parseCertificate } from "../src/core/certificate.js";
import { createDevCa, issueDevCertificate } from "../src/dev-certificates.js";
import { createDirectoryStore } from "../src/stores/directory-store.js";
import { createCertificateStoreServer } from "../src/service/certificate-store-server.js";
import { makeFolder, templates } from "./directory-store.js";
import { fixed, table } from "./stats.js";

const target = 500;
const childFlag = "--store-server-memory-child";

/** What the child is told: the folder and the TLS material. */
interface ChildSetup {
  readonly dir: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly reader: string;
}

/** One reading of the child's memory. */
interface Reading {
  readonly rss: number;
  readonly heap: number;
  /** V8's committed heap: what the heap holds on to, used or not. */
  readonly heapTotal: number;
  readonly external: number;
}

const stages = ["started", "list", "watch", "verify"] as const;
type Stage = (typeof stages)[number];

async function child(setup: ChildSetup): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
  // Grow the young generation to its working size first (see directory-store.ts).
  const ring: unknown[] = new Array(4096);
  for (let i = 0; i < 20_000_000; i++) ring[i & 4095] = { i, s: `x${i & 1023}` };
  const store = await createDirectoryStore({ directory: setup.dir, rescanIntervalMs: 0, onProblem: () => {} });
  const server = createCertificateStoreServer({
    store,
    cert: setup.serverCert,
    key: setup.serverKey,
    access: { reader: { thumbprints: [setup.reader] } },
  });
  const { url } = await server.listen(0);
  const read = (): Reading => {
    for (let i = 0; i < 3; i++) gc();
    const m = process.memoryUsage();
    return { rss: m.rss, heap: m.heapUsed, heapTotal: m.heapTotal, external: m.external };
  };
  process.on("message", (message: { measure?: true; stop?: true }) => {
    if (message.measure)
      process.send!({
        reading: read(),
        newSpace: getHeapSpaceStatistics().find((s) => s.space_name === "new_space")?.space_size,
      });
    if (message.stop)
      void server
        .close()
        .then(() => store.close())
        .then(() => process.exit(0));
  });
  process.send!({ url, certificates: store.stats().certificates });
}

function request<T>(process: ChildProcess, message: object): Promise<T> {
  return new Promise((resolve) => {
    process.once("message", (m) => resolve(m as T));
    process.send(message);
  });
}

async function measure(
  count: number,
  dies: Uint8Array[],
  pki: {
    ca: string;
    server: { cert: string; key: string };
    reader: { cert: string; key: string; sha256: string };
    probe: Uint8Array;
  },
): Promise<Record<Stage, Reading>> {
  const dir = makeFolder(count, dies);
  const proc = fork(fileURLToPath(import.meta.url), [childFlag], {
    execArgv: [...process.execArgv, "--expose-gc"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  try {
    const ready = await new Promise<{ url: string; certificates: number }>((resolve) => {
      proc.once("message", (m) => resolve(m as { url: string; certificates: number }));
      proc.send({
        dir,
        serverCert: pki.server.cert,
        serverKey: pki.server.key,
        reader: pki.reader.sha256,
      } satisfies ChildSetup);
    });
    if (ready.certificates !== count) throw new Error(`loaded ${ready.certificates} of ${count}`);
    const transport = createGrpcTransport({
      baseUrl: ready.url,
      nodeOptions: { ca: pki.ca, cert: pki.reader.cert, key: pki.reader.key },
    });
    const client = createClient(CertificateStoreService, transport);
    const readings = {} as Record<Stage, Reading>;
    const take = async (stage: Stage) => {
      readings[stage] = (await request<{ reading: Reading }>(proc, { measure: true })).reading;
    };
    await take("started");
    await client.listCertificates({ pageSize: 1000 });
    await take("list");
    const abort = new AbortController();
    let seen = 0;
    for await (const event of client.watchCertificates({}, { signal: abort.signal })) {
      if (event.event.case === "snapshot") seen += event.event.value.certificates.length;
      if (event.event.case === "heartbeat") break;
    }
    abort.abort();
    if (seen !== count) throw new Error(`watch sent ${seen} of ${count}`);
    await take("watch");
    const thumbprint = parseCertificate(pki.probe).sha256;
    await client.verifyCertificate({ subject: { case: "thumbprint", value: thumbprint } });
    await take("verify");
    return readings;
  } finally {
    proc.send({ stop: true });
    await new Promise((resolve) => proc.once("exit", resolve));
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * run measures the store server's memory at one certificate and at 100k
 * (10k with `quick`), and returns a bench section (see bench/section.ts).
 */
export async function run(options: { quick?: boolean; log?: (line: string) => void } = {}) {
  const log = options.log ?? ((line: string) => console.log(`  · ${line}`));
  const big = Number(process.env.CERTGATE_BENCH_STORE_COUNT ?? (options.quick === true ? 10_000 : 100_000));
  const dies = await templates();
  const ca = await createDevCa({ commonName: "bench store CA" });
  const server = await issueDevCertificate(ca, {
    commonName: "localhost",
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1"],
    usages: ["server"],
  });
  const reader = await issueDevCertificate(ca, { commonName: "reader", usages: ["client"] });
  const pki = {
    ca: ca.cert,
    server,
    reader: { ...reader, sha256: parseCertificate(reader.der).sha256 },
    probe: dies[0]!,
  };
  log("measuring 1 certificate");
  const one = await measure(1, dies, pki);
  log(`measuring ${big} certificates`);
  const many = await measure(big, dies, pki);
  const per = (stage: Stage, field: keyof Reading) => (many[stage][field] - one[stage][field]) / (big - 1);
  const warnings: string[] = [];
  for (const stage of stages) {
    if (per(stage, "rss") > target)
      warnings.push(`${stage}: ${fixed(per(stage, "rss"), 0)} B RSS per certificate (target ${target})`);
  }
  const lines = [
    `${availableParallelism()} cores (load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}), Node ${process.version}; target: <= ${target} B per certificate at 100k, against one`,
    "",
    ...table(
      [
        "after",
        "RSS B/cert",
        "heap B/cert",
        "heap committed B/cert",
        "external B/cert",
        `RSS MB at 1`,
        `RSS MB at ${big}`,
      ],
      stages.map((stage) => [
        stage,
        fixed(per(stage, "rss"), 0),
        fixed(per(stage, "heap"), 0),
        fixed(per(stage, "heapTotal"), 0),
        fixed(per(stage, "external"), 0),
        fixed(one[stage].rss / 1e6, 1),
        fixed(many[stage].rss / 1e6, 1),
      ]),
    ),
    "",
    "createCertificateStoreServer over a folder store, in a child process; after: start (folder loaded, listening), one",
    "ListCertificates page of 1000, one WatchCertificates read to the end of its snapshot, one VerifyCertificate by thumbprint",
    "(which indexes the store's thumbprints). B/cert: (reading at N less reading at 1) / (N - 1), each after three GCs.",
  ];
  return {
    title: "store-server-memory: the store server's memory per certificate",
    lines,
    warnings,
    data: { one, many, count: big },
  };
}

if (process.argv.includes(childFlag)) {
  setInterval(() => {}, 60_000);
  process.once("message", (setup) => void child(setup as ChildSetup));
} else if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const result = await run({ quick: process.argv.includes("--quick") });
  console.log(`\n## ${result.title}\n`);
  for (const line of [...result.lines, ...result.warnings.map((w) => `warning: ${w}`)]) console.log(line);
}
