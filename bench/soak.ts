// npm run soak -- --minutes N   (or --seconds N; --help for the options)
//
// A long mixed run on loopback, not part of CI: a certificate store service
// (createCertificateStoreServer on a memory store) with an admin uploading
// and deleting client certificates, an API server following it
// (createRemoteStore, mirror mode) behind the gate and the fast refusal
// path, and clients calling it at about --rate calls/s: admitted and refused
// certificates, no certificate, Connect and gRPC, on persistent connections
// and on new ones, plus malformed requests. Every decision is checked
// against the store's state when the call was made (a change counts as
// known everywhere --window-ms after the service acknowledged it); resident
// memory is sampled throughout. Exit status 1 on any wrong decision or error.
import * as http2 from "node:http2";
import { parseArgs } from "node:util";
import { create, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { EchoRequestSchema } from "../src/gen/certgate/example/v1/echo_pb.js";
import { CertificateStoreService } from "../src/gen/certgate/v1/certificate_store_pb.js";
import { createDevCa, issueDevCertificate, type IssuedCertificate } from "../src/dev-certificates.js";
import { parseCertificate } from "../src/core/certificate.js";
import { startChild } from "./ipc.js";
import type { SoakServerConfig, SoakServers } from "./soak-server.js";

/** SoakOptions configures `runSoak`. */
export interface SoakOptions {
  /** How long to run, seconds. */
  readonly seconds: number;
  /** Calls per second to aim at. By default, 1000. */
  readonly rate?: number;
  /** Client certificates that are uploaded and deleted. By default, 12. */
  readonly clients?: number;
  /** Store changes (an upload or a deletion) per second. By default, 1. */
  readonly changesPerSecond?: number;
  /** How long after its acknowledgement a change may still be unknown to the API server, ms. By default, 1000. */
  readonly windowMs?: number;
  /** Seconds between memory samples. By default, 10 (1 for runs under a minute). */
  readonly sampleSeconds?: number;
  /**
   * The parts of the mix to run, to find which one costs memory: calls on
   * persistent connections, calls on a new connection each, malformed
   * requests, store changes. By default, all of them.
   */
  readonly mix?: readonly SoakActivity[];
  /** Prints a progress line. By default, nothing. */
  readonly log?: (line: string) => void;
}

/** SoakActivity is one part of the soak's mix. */
export type SoakActivity = "persistent" | "new" | "malformed" | "changes";

/** soakActivities lists every SoakActivity. */
export const soakActivities: readonly SoakActivity[] = ["persistent", "new", "malformed", "changes"];

/** SoakSample is one memory sample of both processes, MB (counts as numbers). */
export interface SoakSample {
  readonly second: number;
  /** The certgate process (store service and API server). */
  readonly mb: number;
  readonly heapMb: number;
  readonly externalMb: number;
  readonly arrayBuffersMb: number;
  /** Live TLS sockets and HTTP/2 sessions on the API server. */
  readonly connections: number;
  readonly sessions: number;
  /** The soak's own client process. */
  readonly clientMb: number;
  readonly clientHeapMb: number;
}

/** SoakReport is what a soak run saw. */
export interface SoakReport {
  readonly seconds: number;
  readonly calls: number;
  readonly callsPerSecond: number;
  readonly admitted: number;
  readonly refused: number;
  /** Calls made while a change to their certificate was propagating: either answer is right. */
  readonly inWindow: number;
  readonly wrongDecisions: number;
  readonly wrongExamples: string[];
  readonly errors: number;
  readonly errorExamples: string[];
  readonly malformed: number;
  readonly newConnections: number;
  readonly goaways: number;
  readonly uploads: number;
  readonly deletions: number;
  readonly mix: readonly SoakActivity[];
  /** Live API server sockets and HTTP/2 sessions after every client closed its connections (both 0 unless something leaks). */
  readonly leftover: { readonly connections: number; readonly sessions: number };
  /** Memory of the certgate process (store service and API server) and of the client, over time. */
  readonly rss: SoakSample[];
}

interface Change {
  readonly sent: number;
  acked: number;
}

interface Client {
  readonly id: string;
  readonly issued: IssuedCertificate | undefined;
  /** Whether the store holds it now (as acknowledged). undefined: never uploadable. */
  stored: boolean | undefined;
  readonly changes: Change[];
  session: http2.ClientHttp2Session | undefined;
}

type Outcome = "admitted" | "refused" | "other";

const echoPath = "/certgate.example.v1.EchoService/Echo";
const echoProto = toBinary(EchoRequestSchema, create(EchoRequestSchema, { text: "soak" }));
const grpcBody = (() => {
  const frame = Buffer.alloc(5 + echoProto.length);
  frame.writeUInt32BE(echoProto.length, 1);
  frame.set(echoProto, 5);
  return frame;
})();

/**
 * runSoak runs the soak for `options.seconds` and reports what it saw. All
 * servers listen on 127.0.0.1, port 0, and are closed at the end.
 */
export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const rate = options.rate ?? 1000;
  const windowMs = options.windowMs ?? 1000;
  const log = options.log ?? (() => {});
  const mix = new Set(options.mix ?? soakActivities);
  const sampleMs = (options.sampleSeconds ?? (options.seconds < 60 ? 1 : 10)) * 1000;

  const ca = await createDevCa({ commonName: "certgate soak CA" });
  const serverCert = await issueDevCertificate(ca, {
    commonName: "localhost",
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1"],
    usages: ["server"],
  });
  const issue = (commonName: string) => issueDevCertificate(ca, { commonName, usages: ["client"] });
  const admin = await issue("admin");
  const reader = await issue("reader");
  const clients: Client[] = [];
  for (let i = 0; i < (options.clients ?? 12); i++) {
    clients.push({
      id: `client-${i}`,
      issued: await issue(`client-${i}`),
      stored: false,
      changes: [],
      session: undefined,
    });
  }
  // Never uploaded, and no certificate at all: always refused.
  clients.push({ id: "stranger", issued: await issue("stranger"), stored: undefined, changes: [], session: undefined });
  clients.push({ id: "anonymous", issued: undefined, stored: undefined, changes: [], session: undefined });

  const sha256 = (c: IssuedCertificate) => parseCertificate(c.der).sha256;
  const tlsOf = (c: IssuedCertificate | undefined) => ({
    ca: ca.cert,
    ...(c === undefined ? {} : { cert: c.cert, key: c.key }),
  });
  const config: SoakServerConfig = {
    ca: ca.cert,
    cert: serverCert.cert,
    key: serverCert.key,
    reader: { cert: reader.cert, key: reader.key },
    adminSha256: sha256(admin),
    readerSha256: sha256(reader),
  };
  const child = await startChild("./soak-server.ts", config);
  let servers: SoakServers;
  try {
    servers = await child.call<SoakServers>("listen");
  } catch (e) {
    await child.close();
    throw e;
  }
  const { apiUrl, guarded } = servers;
  const store = createClient(
    CertificateStoreService,
    createConnectTransport({ baseUrl: servers.serviceUrl, httpVersion: "2", nodeOptions: tlsOf(admin) }),
  );

  const counts = {
    calls: 0,
    admitted: 0,
    refused: 0,
    inWindow: 0,
    wrong: 0,
    errors: 0,
    malformed: 0,
    newConnections: 0,
    goaways: 0,
    uploads: 0,
    deletions: 0,
  };
  const wrongExamples: string[] = [];
  const errorExamples: string[] = [];
  const error = (what: string) => {
    counts.errors++;
    if (errorExamples.length < 10) errorExamples.push(what);
  };
  const rss: SoakReport["rss"] = [];
  const start = Date.now();
  const end = start + options.seconds * 1000;
  const sample = async () => {
    const m = await child.call<{
      rss: number;
      heapUsed: number;
      external: number;
      arrayBuffers: number;
      connections: number;
      sessions: number;
    }>("memory");
    const own = process.memoryUsage();
    rss.push({
      second: Math.round((Date.now() - start) / 1000),
      mb: m.rss / 2 ** 20,
      heapMb: m.heapUsed / 2 ** 20,
      externalMb: m.external / 2 ** 20,
      arrayBuffersMb: m.arrayBuffers / 2 ** 20,
      connections: m.connections,
      sessions: m.sessions,
      clientMb: own.rss / 2 ** 20,
      clientHeapMb: own.heapUsed / 2 ** 20,
    });
  };
  await sample();

  function openSession(client: Client): http2.ClientHttp2Session {
    const session = http2.connect(apiUrl, tlsOf(client.issued));
    session.on("error", () => {});
    session.on("goaway", () => counts.goaways++);
    return session;
  }

  function request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body: Uint8Array | string) {
    return new Promise<{ status: number; grpcStatus: string | undefined }>((resolve, reject) => {
      const stream = session.request({ ":method": "POST", ":path": echoPath, ...headers });
      let status = 0;
      let grpcStatus: string | undefined;
      stream.on("response", (h) => {
        status = Number(h[":status"]);
        if (typeof h["grpc-status"] === "string") grpcStatus = h["grpc-status"];
      });
      stream.on("trailers", (t) => {
        if (typeof t["grpc-status"] === "string") grpcStatus = t["grpc-status"];
      });
      stream.on("data", () => {});
      stream.on("error", reject);
      stream.on("close", () =>
        status === 0 ? reject(new Error(`stream closed with code ${stream.rstCode}`)) : resolve({ status, grpcStatus }),
      );
      stream.setTimeout(10_000, () => stream.close(http2.constants.NGHTTP2_CANCEL));
      stream.end(body);
    });
  }

  // What the store's state allows for a call made between t0 and t1.
  function expected(client: Client, t0: number, t1: number): "admitted" | "refused" | "either" {
    if (client.stored === undefined) return "refused";
    for (const c of client.changes) {
      if (c.sent <= t1 && (c.acked === 0 || c.acked + windowMs >= t0)) return "either";
    }
    return client.stored ? "admitted" : "refused";
  }

  async function call(client: Client): Promise<void> {
    const grpc = Math.random() < 0.5;
    const fresh = !mix.has("persistent") || (mix.has("new") && Math.random() < 0.03);
    const headers = grpc
      ? { "content-type": "application/grpc", te: "trailers" }
      : { "content-type": "application/proto", "connect-protocol-version": "1" };
    const body = grpc ? grpcBody : echoProto;
    const t0 = Date.now();
    let result: { status: number; grpcStatus: string | undefined } | undefined;
    for (let attempt = 0; attempt < 3 && result === undefined; attempt++) {
      let session = fresh ? undefined : client.session;
      if (session === undefined || session.closed || session.destroyed) {
        session = openSession(client);
        if (fresh) counts.newConnections++;
        else client.session = session;
      }
      try {
        result = await request(session, headers, body);
      } catch (e) {
        // A connection closed by GOAWAY (after refused calls) is retried on a new one.
        if (attempt === 2 || !(session.closed || session.destroyed)) {
          error(`${client.id}: ${e instanceof Error ? e.message : String(e)}`);
          if (fresh) session.destroy();
          return;
        }
      } finally {
        if (fresh) session.close();
      }
    }
    if (result === undefined) return;
    const t1 = Date.now();
    counts.calls++;
    const outcome: Outcome = grpc
      ? result.grpcStatus === "0"
        ? "admitted"
        : result.grpcStatus === "16"
          ? "refused"
          : "other"
      : result.status === 200
        ? "admitted"
        : result.status === 401
          ? "refused"
          : "other";
    if (outcome === "other") {
      error(`${client.id}: HTTP ${result.status}, grpc-status ${result.grpcStatus}`);
      return;
    }
    counts[outcome]++;
    const want = expected(client, t0, t1);
    if (want === "either") {
      counts.inWindow++;
    } else if (want !== outcome) {
      counts.wrong++;
      if (wrongExamples.length < 10)
        wrongExamples.push(`${client.id} ${grpc ? "gRPC" : "Connect"}: ${outcome}, expected ${want}`);
    }
  }

  // Malformed: unknown content type, unknown path, a truncated frame from an
  // admitted client, garbage from no client at all, and (with the guard) an
  // authority connect-node cannot parse. Each must be answered, not crash.
  async function malformed(): Promise<void> {
    const admittedClient = clients.find((c) => c.stored === true) ?? clients[0];
    const kinds: [Client | undefined, http2.OutgoingHttpHeaders, Uint8Array | string][] = [
      [admittedClient, { "content-type": "text/plain" }, "hello"],
      [admittedClient, { ":path": "/no.such.Service/Nothing", "content-type": "application/proto" }, echoProto],
      [admittedClient, { "content-type": "application/grpc", te: "trailers" }, Buffer.from([0, 0, 0, 1, 0])],
      [clients.at(-1), { "content-type": "application/connect+proto" }, Buffer.alloc(3000, 0xff)],
    ];
    if (guarded)
      kinds.push([admittedClient, { ":authority": "::1:443", "content-type": "application/proto" }, echoProto]);
    const [client, headers, body] = kinds[Math.floor(Math.random() * kinds.length)] as (typeof kinds)[number];
    const session = openSession(client as Client);
    try {
      await request(session, headers, body);
      counts.malformed++;
    } catch (e) {
      error(`malformed request not answered: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      session.close();
    }
  }

  async function change(): Promise<void> {
    const candidates = clients.filter((c) => c.stored !== undefined && c.changes.every((ch) => ch.acked !== 0));
    const client = candidates[Math.floor(Math.random() * candidates.length)];
    if (client === undefined || client.issued === undefined) return;
    const record: Change = { sent: Date.now(), acked: 0 };
    client.changes.push(record);
    try {
      if (client.stored) {
        await store.deleteCertificate({ certificateId: client.id });
        counts.deletions++;
      } else {
        await store.createCertificate({ certificate: client.issued.der, certificateId: client.id });
        counts.uploads++;
      }
      client.stored = !client.stored;
    } catch (e) {
      error(`store change for ${client.id}: ${e instanceof Error ? e.message : String(e)}`);
    }
    record.acked = Date.now();
    // Keep only the changes that can still matter.
    while (client.changes.length > 4) client.changes.shift();
  }

  const inFlight = new Set<Promise<void>>();
  const maxInFlight = 512;
  const track = (p: Promise<void>) => {
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  };
  const tickMs = 10;
  const changeEvery = 1000 / (options.changesPerSecond ?? 1);
  let nextChange = Date.now();
  let nextSample = Date.now() + sampleMs;
  let due = 0;
  let lastLog = Date.now();
  while (Date.now() < end) {
    due += (rate * tickMs) / 1000;
    while (due >= 1 && inFlight.size < maxInFlight) {
      due--;
      if (mix.has("malformed") && (Math.random() < 0.02 || !(mix.has("persistent") || mix.has("new")))) {
        track(malformed());
      } else if (mix.has("persistent") || mix.has("new")) {
        track(call(clients[Math.floor(Math.random() * clients.length)] as Client));
      }
    }
    if (due > rate) due = rate; // behind: do not build an unbounded backlog
    if (mix.has("changes") && Date.now() >= nextChange) {
      nextChange += changeEvery;
      track(change());
    }
    if (Date.now() >= nextSample) {
      nextSample += sampleMs;
      track(sample());
    }
    if (Date.now() - lastLog >= 10_000) {
      lastLog = Date.now();
      const last = rss.at(-1);
      log(
        `${Math.round((Date.now() - start) / 1000)} s: ${counts.calls} calls, ${counts.wrong} wrong, ${counts.errors} errors, RSS ${last?.mb.toFixed(0)} MB`,
      );
    }
    await new Promise((r) => setTimeout(r, tickMs));
  }
  await Promise.all(inFlight);
  await sample();
  const seconds = (Date.now() - start) / 1000;

  // Every connection the server saw must be gone once the clients close
  // theirs: a session or socket left behind would be a per-connection leak.
  for (const c of clients) c.session?.close();
  let left = await child.call<{ connections: number; sessions: number }>("memory");
  for (const until = Date.now() + 10_000; (left.connections > 0 || left.sessions > 0) && Date.now() < until; ) {
    await new Promise((r) => setTimeout(r, 50));
    left = await child.call<{ connections: number; sessions: number }>("memory");
  }
  await child.call("stop");
  await child.close();

  return {
    seconds,
    calls: counts.calls,
    callsPerSecond: counts.calls / seconds,
    admitted: counts.admitted,
    refused: counts.refused,
    inWindow: counts.inWindow,
    wrongDecisions: counts.wrong,
    wrongExamples,
    errors: counts.errors,
    errorExamples,
    malformed: counts.malformed,
    newConnections: counts.newConnections,
    goaways: counts.goaways,
    uploads: counts.uploads,
    deletions: counts.deletions,
    mix: [...mix],
    rss,
    leftover: { connections: left.connections, sessions: left.sessions },
  };
}

/** A resident memory slope above this after the warm-up is reported as a warning, MB/min. */
export const rssWarnMbPerMinute = 2;

/** SoakSlopes are least-squares slopes over the samples after the warm-up (the first 20% of the run), MB/min. */
export interface SoakSlopes {
  readonly fromSecond: number;
  readonly server: number;
  readonly serverHeap: number;
  readonly serverExternal: number;
  readonly client: number;
  readonly clientHeap: number;
}

/** soakSlopes fits a line to each memory series after the warm-up; undefined with fewer than 3 samples. */
export function soakSlopes(r: SoakReport): SoakSlopes | undefined {
  const warm = r.rss.filter((s) => s.second >= r.seconds * 0.2);
  if (warm.length < 3) return undefined;
  const slope = (y: (s: SoakSample) => number) => {
    const n = warm.length;
    const mx = warm.reduce((a, s) => a + s.second, 0) / n;
    const my = warm.reduce((a, s) => a + y(s), 0) / n;
    let num = 0;
    let den = 0;
    for (const s of warm) {
      num += (s.second - mx) * (y(s) - my);
      den += (s.second - mx) ** 2;
    }
    return den === 0 ? 0 : (num / den) * 60;
  };
  return {
    fromSecond: (warm[0] as SoakSample).second,
    server: slope((s) => s.mb),
    serverHeap: slope((s) => s.heapMb),
    serverExternal: slope((s) => s.externalMb),
    client: slope((s) => s.clientMb),
    clientHeap: slope((s) => s.clientHeapMb),
  };
}

/** formatSoakReport renders a report as the lines `npm run soak` prints. */
export function formatSoakReport(r: SoakReport): string[] {
  const warm = r.rss.find((s) => s.second >= r.seconds * 0.2) ?? r.rss[0];
  const last = r.rss.at(-1);
  const signed = (n: number) => `${n >= 0 ? "+" : ""}${n.toFixed(1)}`;
  const lines = [
    `${r.calls} calls in ${r.seconds.toFixed(0)} s (${r.callsPerSecond.toFixed(0)}/s): ${r.admitted} admitted, ${r.refused} refused, ${r.inWindow} during a change's propagation window${r.mix.length < soakActivities.length ? ` (mix: ${r.mix.join(", ")})` : ""}`,
    `wrong decisions: ${r.wrongDecisions}${r.wrongExamples.length > 0 ? ` (${r.wrongExamples.join("; ")})` : ""}`,
    `errors: ${r.errors}${r.errorExamples.length > 0 ? ` (${r.errorExamples.join("; ")})` : ""}`,
    `malformed requests answered: ${r.malformed}; calls on a new connection: ${r.newConnections}; GOAWAYs received: ${r.goaways}`,
    `store changes: ${r.uploads} uploads, ${r.deletions} deletions`,
    `API server connections left after the clients closed: ${r.leftover.connections} sockets, ${r.leftover.sessions} HTTP/2 sessions`,
    `resident memory of the certgate process (store service + API server): ${r.rss.map((s) => `${s.second}s ${s.mb.toFixed(0)}`).join(", ")} MB`,
    `resident memory of the soak client: ${r.rss.map((s) => `${s.second}s ${s.clientMb.toFixed(0)}`).join(", ")} MB`,
  ];
  if (warm !== undefined && last !== undefined && last.second > warm.second) {
    lines.push(
      `after warm-up (${warm.second} s): certgate ${warm.mb.toFixed(0)} → ${last.mb.toFixed(0)} MB, heap ${warm.heapMb.toFixed(0)} → ${last.heapMb.toFixed(0)} MB, external ${warm.externalMb.toFixed(0)} → ${last.externalMb.toFixed(0)} MB (array buffers ${warm.arrayBuffersMb.toFixed(0)} → ${last.arrayBuffersMb.toFixed(0)}), live API connections ${warm.connections} → ${last.connections}, sessions ${warm.sessions} → ${last.sessions}; client ${warm.clientMb.toFixed(0)} → ${last.clientMb.toFixed(0)} MB`,
    );
  }
  const slopes = soakSlopes(r);
  if (slopes !== undefined) {
    lines.push(
      `resident memory slope after warm-up (least squares from ${slopes.fromSecond} s): certgate ${signed(slopes.server)} MB/min (heap ${signed(slopes.serverHeap)}, external ${signed(slopes.serverExternal)}), client ${signed(slopes.client)} MB/min (heap ${signed(slopes.clientHeap)})`,
    );
    for (const [who, v] of [
      ["certgate process", slopes.server],
      ["soak client", slopes.client],
    ] as const) {
      if (v > rssWarnMbPerMinute)
        lines.push(
          `warning: the ${who}'s resident memory grew ${signed(v)} MB/min after warm-up (threshold ${rssWarnMbPerMinute} MB/min)`,
        );
    }
  }
  return lines;
}

const usage = `usage: npm run soak -- --minutes N | --seconds N [--rate CALLS_PER_S] [--window-ms MS] [--mix ${soakActivities.join(",")}]`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      minutes: { type: "string" },
      seconds: { type: "string" },
      rate: { type: "string" },
      "window-ms": { type: "string" },
      mix: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help === true) {
    console.log(usage);
    return 0;
  }
  const seconds = values.seconds !== undefined ? Number(values.seconds) : Number(values.minutes ?? "1") * 60;
  const rate = values.rate === undefined ? undefined : Number(values.rate);
  const windowMs = values["window-ms"] === undefined ? undefined : Number(values["window-ms"]);
  const mix = values.mix === undefined ? undefined : (values.mix.split(",") as SoakActivity[]);
  if (mix !== undefined && (mix.length === 0 || mix.some((m) => !soakActivities.includes(m)))) {
    console.error(usage);
    return 2;
  }
  if (
    !(seconds > 0) ||
    seconds > 24 * 3600 ||
    (rate !== undefined && !(rate > 0 && rate <= 20_000)) ||
    (windowMs !== undefined && !(windowMs >= 0))
  ) {
    console.error(usage);
    return 2;
  }
  console.log(
    `certgate soak: ${seconds} s at about ${rate ?? 1000} calls/s on loopback, started ${new Date().toISOString()}`,
  );
  const report = await runSoak({ seconds, rate, windowMs, mix, log: (l) => console.log(`  · ${l}`) });
  for (const line of formatSoakReport(report)) console.log(line);
  return report.wrongDecisions === 0 && report.errors === 0 ? 0 : 1;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await main();
}
