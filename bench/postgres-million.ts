// postgres-million: the PostgreSQL store at 1,000,000 certificates.
//   1. Bulk load through CreateCertificates (batches of 1000, two in flight,
//      as `certgate import` sends them) into a replica: certificates/s.
//   2. A new replica over the loaded store: start time (its copy read page
//      by page) and resident memory growth per certificate against a
//      replica over an empty store (both after a ListCertificates call,
//      garbage collected three times).
//   3. ListCertificates page time at the start vs the end of the key space
//      (keyset paging), plain and with a label filter; medians over
//      interleaved rounds.
//   4. A new watcher's snapshot: time, and the replica's peak RSS growth
//      while it streams (it is read page by page, never held whole).
//
// Each replica (createPostgresStore + createCertificateStoreServer) runs in a
// child process of its own; the client runs here. The certificates (one CA,
// one key, distinct serial numbers) are made once and cached in the temp
// folder (never in the repository). The database is created for the run and
// dropped. Not run by default (minutes): `npm run bench -- --only
// postgres-million` (CERTGATE_BENCH_MILLION=N for another count; --quick: 20,000).
import { closeSync, existsSync, openSync, readSync, renameSync, statSync, writeSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import pg from "pg";
import { CertificateStoreService } from "../src/gen/certgate/v1/certificate_store_pb.js";
import { parseCertificate } from "../src/core/certificate.js";
import { issueDevCertificate } from "../src/dev-certificates.js";
import { encodePageToken } from "../src/service/page-token.js";
import { createCertificateFactory } from "../test/support/many-certificates.js";
import { childConfig, serveParent, startChild, type ChildHandle } from "./ipc.js";
import { createBenchPki } from "./pki.js";
import type { BenchOptions, SectionResult } from "./section.js";
import { fixed, median, table } from "./stats.js";

const adminUrl =
  process.env.CERTGATE_BENCH_DATABASE_URL ??
  process.env.CERTGATE_TEST_DATABASE_URL ??
  "postgres://postgres@127.0.0.1:5432/test";

const targetRate = 10_000;
const targetBytes = 300;

/** What a replica child is told. */
interface ReplicaSetup {
  readonly url: string;
  readonly schema: string;
  readonly cert: string;
  readonly key: string;
  readonly admin: string;
  readonly reader: string;
}

/** One reading of a replica's memory. */
interface Reading {
  readonly rss: number;
  readonly heap: number;
  readonly maxRss: number;
  readonly certificates: number;
}

const idOf = (i: number) => `device-${String(i).padStart(7, "0")}`;

// The child: one replica serving the store service on 127.0.0.1.
async function replicaMain(): Promise<void> {
  const setup = childConfig<{ replica: ReplicaSetup }>().replica;
  const { createPostgresStore } = await import("../src/stores/postgres/postgres-store.js");
  const { createCertificateStoreServer } = await import("../src/service/certificate-store-server.js");
  const t0 = performance.now();
  const store = await createPostgresStore({
    connectionString: setup.url,
    schema: setup.schema,
    snapshotTimeoutMs: 600_000,
  });
  const startMs = performance.now() - t0;
  const server = createCertificateStoreServer({
    store,
    cert: setup.cert,
    key: setup.key,
    access: { admin: { thumbprints: [setup.admin] }, reader: { thumbprints: [setup.reader] } },
  });
  const { url } = await server.listen(0);
  const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
  serveParent({
    info: () => ({ url, startMs }),
    measure: (): Reading => {
      for (let i = 0; i < 3; i++) gc();
      const m = process.memoryUsage();
      return {
        rss: m.rss,
        heap: m.heapUsed,
        maxRss: process.resourceUsage().maxRSS * 1024,
        certificates: store.stats().certificates,
      };
    },
  });
}

// The certificates, made once per count and cached: [u16 length][DER]...
async function certificateFile(count: number, log: (line: string) => void): Promise<string> {
  const file = join(tmpdir(), `certgate-bench-million-${count}.der`);
  if (existsSync(file) && statSync(file).size > 0) return file;
  const t0 = performance.now();
  const factory = await createCertificateFactory("bench device");
  const partial = `${file}.${process.pid}`;
  const fd = openSync(partial, "w");
  try {
    let chunk: Buffer[] = [];
    for (let i = 1; i <= count; i++) {
      const der = factory.issue(i);
      const length = Buffer.alloc(2);
      length.writeUInt16BE(der.length);
      chunk.push(length, Buffer.from(der.buffer, der.byteOffset, der.length));
      if (chunk.length >= 20_000 || i === count) {
        writeSync(fd, Buffer.concat(chunk));
        chunk = [];
      }
      if (i % 200_000 === 0) log(`made ${i} certificates`);
    }
  } finally {
    closeSync(fd);
  }
  renameSync(partial, file);
  log(`made ${count} certificates in ${fixed((performance.now() - t0) / 1000, 1)} s (cached in ${file})`);
  return file;
}

// Reads the cached certificates in batches, without holding them all.
function* batches(file: string, size: number): Generator<Uint8Array[]> {
  const fd = openSync(file, "r");
  try {
    let buffer = Buffer.alloc(0);
    const block = Buffer.alloc(4 * 1024 * 1024);
    let batch: Uint8Array[] = [];
    for (;;) {
      const n = readSync(fd, block, 0, block.length, null);
      buffer = Buffer.concat([buffer, block.subarray(0, n)]);
      let at = 0;
      while (at + 2 <= buffer.length) {
        const length = buffer.readUInt16BE(at);
        if (at + 2 + length > buffer.length) break;
        batch.push(new Uint8Array(buffer.subarray(at + 2, at + 2 + length)));
        at += 2 + length;
        if (batch.length === size) {
          yield batch;
          batch = [];
        }
      }
      buffer = buffer.subarray(at);
      if (n === 0) break;
    }
    if (batch.length > 0) yield batch;
  } finally {
    closeSync(fd);
  }
}

/**
 * run measures the figures; see the file comment.
 */
export async function run(options: Partial<BenchOptions> = {}): Promise<SectionResult> {
  const quick = options.quick === true;
  const log = options.log ?? ((line: string) => console.log(`  · ${line}`));
  const count = Number(process.env.CERTGATE_BENCH_MILLION ?? (quick ? 20_000 : 1_000_000));
  const title = `postgres-million: bulk load, replica memory and page times at ${count.toLocaleString("en")} certificates`;
  const lines: string[] = [];
  const warnings: string[] = [];
  const data: Record<string, unknown> = { count, loadBefore: loadavg() };
  const name = `certgate_million_${process.pid}_${Date.now()}`;
  const admin = new pg.Pool({ connectionString: adminUrl, max: 1 });
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } catch (error) {
    await admin.end();
    return {
      title,
      lines: [`skipped: PostgreSQL unreachable at ${adminUrl} (${(error as Error).message})`],
      warnings: ["skipped"],
      data,
    };
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const pki = options.pki ?? (await createBenchPki());
  const issued = pki.issued;
  const adminCert = await issueDevCertificate(issued.ca, { commonName: "bench admin", usages: ["client"] });
  const readerCert = await issueDevCertificate(issued.ca, { commonName: "bench reader", usages: ["client"] });
  const setup = (schema: string): ReplicaSetup => ({
    url: url.toString(),
    schema,
    cert: issued.server.cert,
    key: issued.server.key,
    admin: parseCertificate(adminCert.der).sha256,
    reader: parseCertificate(readerCert.der).sha256,
  });
  const children: ChildHandle[] = [];
  const replica = async (schema: string) => {
    const child = await startChild(
      "./postgres-million.ts",
      { replica: setup(schema) },
      {
        nodeArgs: [
          "--expose-gc",
          "--max-old-space-size=4096",
          ...(options.cpuProfDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${options.cpuProfDir}`]),
        ],
        startTimeoutMs: 600_000,
      },
    );
    children.push(child);
    const info = await child.call<{ url: string; startMs: number }>("info");
    const client = (who: { cert: string; key: string }): Client<typeof CertificateStoreService> =>
      createClient(
        CertificateStoreService,
        createGrpcTransport({ baseUrl: info.url, nodeOptions: { ca: issued.ca.cert, cert: who.cert, key: who.key } }),
      );
    return { child, startMs: info.startMs, admin: client(adminCert), reader: client(readerCert) };
  };
  const measure = async (r: Awaited<ReturnType<typeof replica>>) => {
    await r.reader.listCertificates({ pageSize: 100 });
    return r.child.call<Reading>("measure");
  };

  try {
    const file = await certificateFile(count, log);

    // 1. Bulk load through CreateCertificates, two batches in flight.
    const loader = await replica("million");
    const empty = await measure(loader);
    const t0 = performance.now();
    let sent = 0;
    const running = new Set<Promise<void>>();
    for (const ders of batches(file, 1000)) {
      const from = sent;
      sent += ders.length;
      const requests = ders.map((der, k) => ({
        certificateId: idOf(from + k),
        certificate: der,
        labels: { site: `site-${(from + k) % 100}` },
      }));
      const call = loader.admin.createCertificates({ requests }, { timeoutMs: 120_000 }).then(() => undefined);
      running.add(call);
      void call.finally(() => running.delete(call)).catch(() => undefined);
      if (running.size >= 2) await Promise.race(running);
      if (sent % 100_000 === 0) {
        log(`loaded ${sent} (${Math.round(sent / ((performance.now() - t0) / 1000))}/s)`);
      }
    }
    await Promise.all(running);
    const loadSeconds = (performance.now() - t0) / 1000;
    const rate = count / loadSeconds;
    data.bulkLoad = { seconds: loadSeconds, perSecond: rate };
    log(`bulk load: ${count} in ${fixed(loadSeconds, 1)} s = ${Math.round(rate)}/s`);
    await loader.child.close();

    // 2. A new replica over the loaded store, against one over an empty store.
    const fresh = await replica("million");
    const loaded = await measure(fresh);
    const emptyReplica = await replica("empty");
    const baseline = await measure(emptyReplica);
    await emptyReplica.child.close();
    const perCertificate = (loaded.rss - baseline.rss) / count;
    const heapPerCertificate = (loaded.heap - baseline.heap) / count;
    data.memory = {
      empty: baseline,
      loaded,
      loaderEmpty: empty,
      perCertificate,
      heapPerCertificate,
      startMs: fresh.startMs,
    };
    log(`replica: start ${fixed(fresh.startMs / 1000, 1)} s, ${fixed(perCertificate, 0)} B/certificate RSS`);

    // 3. Page times at the start and the end of the key space.
    const rounds = quick ? 10 : 30;
    const endToken = encodePageToken(idOf(count - 200));
    const kinds = {
      "first page": () => fresh.reader.listCertificates({ pageSize: 100 }),
      "page at the end": () => fresh.reader.listCertificates({ pageSize: 100, pageToken: endToken }),
      "label filter, first page": () => fresh.reader.listCertificates({ pageSize: 100, labels: { site: "site-7" } }),
      "label filter, at the end": () =>
        fresh.reader.listCertificates({ pageSize: 100, pageToken: endToken, labels: { site: "site-7" } }),
    };
    const times: Record<string, number[]> = Object.fromEntries(Object.keys(kinds).map((k) => [k, []]));
    for (let r = 0; r < rounds; r++) {
      for (const [kind, call] of Object.entries(kinds)) {
        const s = performance.now();
        const page = await call();
        times[kind]!.push(performance.now() - s);
        if (page.certificates.length === 0) warnings.push(`${kind}: an empty page`);
      }
    }
    const pageMs = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
    data.pageMs = pageMs;

    // 4. A new watcher's snapshot, streamed.
    const before = await fresh.child.call<Reading>("measure");
    const s0 = performance.now();
    let received = 0;
    const abort = new AbortController();
    for await (const event of fresh.reader.watchCertificates({}, { signal: abort.signal, timeoutMs: 600_000 })) {
      if (event.event.case === "snapshot") received += event.event.value.certificates.length;
      if (event.event.case === "heartbeat") break;
    }
    abort.abort();
    const snapshotSeconds = (performance.now() - s0) / 1000;
    const after = await fresh.child.call<Reading>("measure");
    data.snapshot = {
      seconds: snapshotSeconds,
      received,
      peakRssGrowth: after.maxRss - before.rss,
      rssAfter: after.rss,
      heapGrowth: after.heap - before.heap,
    };
    await fresh.child.close();

    const mib = (n: number) => fixed(n / 1048576, 0);
    lines.push(
      `1M table (${count.toLocaleString("en")} certificates, PostgreSQL 15 on this machine, load average ${loadavg()
        .map((l) => fixed(l, 1))
        .join(" ")}):`,
      ...table(
        ["measure", "figure", "target"],
        [
          [
            "bulk load, CreateCertificates ×1000, 2 in flight",
            `${Math.round(rate)}/s (${fixed(loadSeconds, 0)} s)`,
            `≥ ${targetRate}/s`,
          ],
          ["replica RSS growth per certificate", `${fixed(perCertificate, 0)} B`, `≤ ${targetBytes} B`],
          ["replica heap growth per certificate", `${fixed(heapPerCertificate, 0)} B`, ""],
          ["replica RSS, empty → loaded", `${mib(baseline.rss)} → ${mib(loaded.rss)} MiB`, ""],
          ["replica start (copy read page by page)", `${fixed(fresh.startMs / 1000, 1)} s`, ""],
          ...Object.entries(pageMs).map(([k, v]) => [`ListCertificates 100, ${k}`, `${fixed(v, 2)} ms`, "flat"]),
          [
            "new watcher's snapshot",
            `${fixed(snapshotSeconds, 1)} s, peak RSS +${mib(Math.max(0, after.maxRss - before.rss))} MiB`,
            "streamed",
          ],
          [
            "  after it, GC'd: RSS, heap growth",
            `${mib(after.rss)} MiB, ${fixed((after.heap - before.heap) / 1048576, 1)} MiB`,
            "",
          ],
        ],
      ),
    );
    if (rate < targetRate) warnings.push(`bulk load ${Math.round(rate)}/s, under ${targetRate}/s`);
    if (perCertificate > targetBytes)
      warnings.push(`replica memory ${fixed(perCertificate, 0)} B/certificate, over ${targetBytes}`);
    if (received !== count) warnings.push(`the snapshot held ${received} certificates, not ${count}`);
  } finally {
    for (const child of children) await child.close().catch(() => undefined);
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
    await admin.end();
  }
  data.loadAfter = loadavg();
  return { title, lines, warnings, data };
}

if (process.argv[2]?.startsWith('{"replica"')) {
  await replicaMain();
} else if (import.meta.url === `file://${process.argv[1]}`) {
  const prof = process.argv.indexOf("--cpu-prof");
  const result = await run({
    quick: process.argv.includes("--quick"),
    cpuProfDir: prof < 0 ? undefined : process.argv[prof + 1],
  });
  console.log([result.title, ...result.lines, ...result.warnings.map((w) => `warning: ${w}`)].join("\n"));
}
