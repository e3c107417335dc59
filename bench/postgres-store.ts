// postgres-store: the certificate store service on PostgreSQL with two
// replicas. Uploads per second through the service (one and eight clients),
// revocation on replica A to the first refused call on an API server whose
// mirror follows replica B, and with 100,000 certificates: a replica's start
// (load the copy, listen) and a new mirror's snapshot.
//
// Replicas A and B, the mirror and the API server run in this process, the
// replica of the 100,000 certificates in a `certgate serve --database`
// process of its own (dist/cli.js when built); all over real TLS on
// 127.0.0.1, on a database created for the run (and dropped) on the server of
// CERTGATE_BENCH_DATABASE_URL, else CERTGATE_TEST_DATABASE_URL, else
// postgres://postgres@127.0.0.1:5432/test. Run it with `npm run bench --
// --only postgres-store`, or alone: `npx tsx bench/postgres-store.ts [--quick]`.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import pg from "pg";
import { EchoService } from "../src/gen/certgate/example/v1/echo_pb.js";
import { CertificateStoreService } from "../src/gen/certgate/v1/certificate_store_pb.js";
import { parseCertificate } from "../src/core/certificate.js";
import { issueDevCertificate } from "../src/dev-certificates.js";
import { createCertificateStoreServer, type CertificateStoreServer } from "../src/service/certificate-store-server.js";
import { createPostgresStore, type PostgresStore } from "../src/stores/postgres/postgres-store.js";
import { createRemoteStore, type RemoteStore } from "../src/stores/remote-store.js";
import { generateCertificates } from "../test/support/many-certificates.js";
import { repoRoot } from "./ipc.js";
import { createBenchPki } from "./pki.js";
import { startApiServer, admitted } from "./remote-store.js";
import type { BenchOptions, SectionResult } from "./section.js";
import { fixed, median } from "./stats.js";

/** What `run` takes: bench/run.ts's options, all optional. */
export type PostgresBenchOptions = Partial<BenchOptions> & { quick?: boolean };

const adminUrl =
  process.env.CERTGATE_BENCH_DATABASE_URL ??
  process.env.CERTGATE_TEST_DATABASE_URL ??
  "postgres://postgres@127.0.0.1:5432/test";

interface Replica {
  store: PostgresStore;
  server: CertificateStoreServer;
  url: string;
  close(): Promise<void>;
}

/**
 * run measures the figures; see the file comment.
 */
export async function run(options: PostgresBenchOptions = {}): Promise<SectionResult> {
  const quick = options.quick === true;
  const log = options.log ?? ((line: string) => console.log(`  · ${line}`));
  const lines: string[] = [];
  const warnings: string[] = [];
  const data: Record<string, unknown> = {};
  const title = "postgres-store: uploads/s, revocation across replicas, 100k start and snapshot";
  const name = `certgate_bench_${process.pid}_${Date.now()}`;
  try {
    await admin(`CREATE DATABASE ${name}`);
  } catch (error) {
    return {
      title,
      lines: [
        `skipped: PostgreSQL unreachable at ${adminUrl} (${(error as Error).message}); set CERTGATE_BENCH_DATABASE_URL`,
      ],
      warnings: ["PostgreSQL section skipped"],
      data: {},
    };
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const dbUrl = url.toString();
  const ownPki = options.pki === undefined;
  const pki = options.pki ?? (await createBenchPki());
  const issued = pki.issued;
  const adminCert = await issueDevCertificate(issued.ca, { commonName: "bench admin", usages: ["client"] });
  const readerCert = await issueDevCertificate(issued.ca, { commonName: "bench reader", usages: ["client"] });
  const nodeOptions = (who: { cert: string; key: string }) => ({ ca: issued.ca.cert, cert: who.cert, key: who.key });
  const open: { close(): Promise<void> }[] = [];

  async function replica(schema: string): Promise<Replica> {
    const store = await createPostgresStore({ connectionString: dbUrl, schema });
    const server = createCertificateStoreServer({
      store,
      cert: issued.server.cert,
      key: issued.server.key,
      access: {
        admin: { thumbprints: [parseCertificate(adminCert.der).sha256] },
        reader: { thumbprints: [parseCertificate(readerCert.der).sha256] },
      },
    });
    const { url: serviceUrl } = await server.listen();
    const r = {
      store,
      server,
      url: serviceUrl,
      close: async () => {
        await server.close();
        await store.close();
      },
    };
    open.push(r);
    return r;
  }
  const adminClient = (r: Replica): Client<typeof CertificateStoreService> =>
    createClient(CertificateStoreService, createGrpcTransport({ baseUrl: r.url, nodeOptions: nodeOptions(adminCert) }));
  const mirrorOf = (...rs: Replica[]): RemoteStore => {
    const m = createRemoteStore({
      transports: rs.map((r) => createGrpcTransport({ baseUrl: r.url, nodeOptions: nodeOptions(readerCert) })),
    });
    open.push(m);
    return m;
  };

  try {
    const a = await replica("certgate");
    const b = await replica("certgate");

    // 1. Uploads per second through replica A, one and eight clients.
    const perClient = quick ? 50 : 200;
    const { ders } = await generateCertificates(perClient * 9, "bench upload");
    let next = 0;
    const uploads: Record<string, number> = {};
    for (const clients of [1, 8]) {
      const callers = Array.from({ length: clients }, () => adminClient(a));
      const count = perClient * clients;
      const start = next;
      next += count;
      const t0 = performance.now();
      let i = start;
      await Promise.all(
        callers.map(async (caller) => {
          while (i < start + count) {
            const k = i++;
            await caller.createCertificate({ certificateId: `u${k}`, certificate: ders[k]! });
          }
        }),
      );
      uploads[clients] = count / ((performance.now() - t0) / 1000);
      log(`${clients} client(s): ${Math.round(uploads[clients]!)} uploads/s (${count} uploads)`);
    }
    data.uploadsPerSecond = uploads;
    lines.push(
      "Uploads through one replica (CreateCertificate over gRPC, TLS on 127.0.0.1, each a transaction committed before the answer):",
      `  1 client: ${Math.round(uploads[1]!)} uploads/s; 8 clients: ${Math.round(uploads[8]!)} uploads/s`,
      "",
    );

    // 2. Revocation on A → first refused call on an API server following B.
    const onB = mirrorOf(b);
    await onB.ready(10_000);
    const api = await startApiServer(pki, onB);
    open.push(api);
    const alice = createClient(
      EchoService,
      createConnectTransport({ baseUrl: api.url, httpVersion: "2", nodeOptions: nodeOptions(issued.alice) }),
    );
    const echo = () => alice.echo({ text: "hi" });
    const runs = quick ? 5 : 20;
    const samples: number[] = [];
    const writer = adminClient(a);
    for (let r = 0; r < runs; r++) {
      await writer.createCertificate({ certificate: issued.alice.der, certificateId: "alice" });
      while (!(await admitted(echo))) await sleep(1);
      await writer.deleteCertificate({ certificateId: "alice" });
      const t0 = performance.now();
      while (await admitted(echo)) {
        if (performance.now() - t0 > 10_000) throw new Error("the revocation did not reach the API server within 10 s");
      }
      samples.push(performance.now() - t0);
      log(`revocation ${r + 1}/${runs}: refused after ${fixed(samples[r]!, 2)} ms`);
    }
    const worst = Math.max(...samples);
    data.revocationMs = { samples, median: median(samples), worst };
    lines.push(
      `Revocation: DeleteCertificate answered by replica A → first refused call on an API server whose mirror follows replica B (${runs} runs, one open connection):`,
      `  median ${fixed(median(samples), 2)} ms (target < 50 ms), worst ${fixed(worst, 2)} ms (target < 1000 ms)`,
      "",
    );
    if (median(samples) >= 50 || worst >= 1000) warnings.push("revocation across replicas missed its target");

    // 3. 100,000 certificates: a replica's start and a new mirror's snapshot.
    const total = quick ? 10_000 : 100_000;
    const t0 = performance.now();
    const many = await generateCertificates(total, "bench many");
    log(`generated ${total} certificates in ${fixed((performance.now() - t0) / 1000, 1)} s`);
    const t1 = performance.now();
    for (let from = 0; from < total; from += 5000) {
      await a.store.putMany(many.ders.slice(from, from + 5000).map((der, i) => ({ id: `m${from + i}`, der })));
    }
    log(`stored ${total} certificates in ${fixed((performance.now() - t1) / 1000, 1)} s`);
    const startTimes: number[] = [];
    const snapshotTimes: number[] = [];
    const cli = cliCommand();
    for (let r = 0; r < (quick ? 1 : 3); r++) {
      // A real replica: `certgate serve --database` in a process of its own,
      // from spawn to its "listening on" line.
      const s0 = performance.now();
      const replicaProcess = await startServe(cli, [
        "serve",
        "--database",
        dbUrl,
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        pki.server.certPath,
        "--tls-key",
        pki.server.keyPath,
        "--admin",
        parseCertificate(adminCert.der).sha256,
        "--reader",
        parseCertificate(readerCert.der).sha256,
      ]);
      startTimes.push(performance.now() - s0);
      try {
        const m0 = performance.now();
        const mirror = createRemoteStore({
          transport: createGrpcTransport({ baseUrl: replicaProcess.url, nodeOptions: nodeOptions(readerCert) }),
        });
        await mirror.ready(60_000);
        snapshotTimes.push(performance.now() - m0);
        await mirror.close();
      } finally {
        await replicaProcess.stop();
      }
      log(`replica process start ${fixed(startTimes[r]!, 0)} ms, mirror snapshot ${fixed(snapshotTimes[r]!, 0)} ms`);
    }
    data.hundredThousand = {
      certificates: total,
      replicaStartMs: startTimes,
      mirrorSnapshotMs: snapshotTimes,
      cli: cli.label,
    };
    const snapshotMedian = median(snapshotTimes);
    lines.push(
      `${total.toLocaleString("en")} certificates (${a.store.stats().certificates.toLocaleString("en")} in the store), median of ${startTimes.length}:`,
      `  replica start to serving (\`certgate serve --database\` process, ${cli.label}: spawn to "listening on"): ${fixed(median(startTimes), 0)} ms`,
      `  new mirror's snapshot from that replica (createRemoteStore → ready, in this process): ${fixed(snapshotMedian, 0)} ms (target < 3000 ms)`,
      "",
    );
    if (snapshotMedian >= 3000)
      warnings.push(`the ${total} certificate snapshot took ${fixed(snapshotMedian, 0)} ms, over its 3 s target`);
    if (!cli.built)
      warnings.push(
        "dist/cli.js is missing: the replica ran through tsx, whose start-up compiles the source (npm run build first)",
      );
  } finally {
    for (const o of open.reverse()) await o.close().catch(() => undefined);
    if (ownPki) await pki.close();
    await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
  }
  return { title, lines, warnings, data };
}

// The command that runs certgate: the built CLI when there is one.
function cliCommand(): { args: string[]; label: string; built: boolean } {
  const built = join(repoRoot, "dist", "cli.js");
  if (existsSync(built)) return { args: [built], label: "dist/cli.js", built: true };
  return { args: ["--import", "tsx", join(repoRoot, "src", "cli.ts")], label: "tsx src/cli.ts", built: false };
}

// Starts certgate and waits for its "listening on" line.
async function startServe(cli: { args: string[] }, args: string[]): Promise<{ url: string; stop(): Promise<void> }> {
  const child = spawn(process.execPath, [...cli.args, ...args], { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const seen = (d: Buffer) => {
      out += d.toString();
      const match = /listening on (https:\/\/\S+)/.exec(out);
      if (match !== null) resolve(match[1]!);
    };
    child.stdout!.on("data", seen);
    child.stderr!.on("data", seen);
    child.on("exit", () => reject(new Error(`certgate serve exited:\n${out}`)));
  });
  return {
    url,
    async stop() {
      child.kill("SIGTERM");
      await exited;
    },
  };
}

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const result = await run({ quick: process.argv.includes("--quick") });
  console.log(`\n## ${result.title}\n`);
  for (const line of result.lines) console.log(line);
  for (const warning of result.warnings) console.log(`WARNING: ${warning}`);
}
