// authz-proxy: what certgate authz costs behind a real nginx. The same
// nginx, on one TLS port, answers /static/ with a static allow and /auth/
// through auth_request to a certgate authz process, both from the same
// upstream (an nginx server block that answers 200); a load generator
// keeps persistent HTTPS/1.1 connections busy with alice's certificate.
// Rounds alternate the two. Also measured: certgate's own forward-auth
// round trip on loopback (one keep-alive connection, one request at a
// time) and certgate's CPU time per forward-auth request (from /proc).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { once } from "node:events";
import * as http from "node:http";
import * as net from "node:net";
import * as https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createAuthzDecide } from "../src/authz/authz-decision.js";
import { createForwardAuthHandler } from "../src/authz/forward-auth.js";
import { createDecisionCore } from "../src/decision/decision.js";
import { createForwardedPeerReader } from "../src/proxy/forwarded-peer.js";
import { createTrustedProxyCheck } from "../src/proxy/trusted-proxies.js";
import { createThumbprintStore } from "../src/stores/thumbprint-store.js";
import { repoRoot } from "./ipc.js";
import { createNsTimer } from "./ns-timer.js";
import type { BenchOptions, SectionResult } from "./section.js";
import { fixed, median, table } from "./stats.js";
import { freePort } from "../test/support/free-port.js";
import { nginxBinary, writeNginxMain } from "../test/support/proxies.js";
import { waitFor } from "../test/support/harness.js";

/** The target for certgate's own decision, p50, µs. */
const targetUs = 100;

interface Window {
  readonly requests: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted.length === 0
    ? Number.NaN
    : (sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN);
}

// One keep-alive connection, one request at a time: each round trip from
// the request's write to the last byte of its answer (headers, then a body
// of Content-Length bytes).
async function rawRoundTrips(port: number, request: string, warmupMs: number, ms: number): Promise<Window> {
  const socket = net.connect(port, "127.0.0.1");
  socket.setNoDelay(true);
  await once(socket, "connect");
  const bytes = Buffer.from(request, "latin1");
  const latencies: number[] = [];
  let errors = 0;
  let pending: Buffer<ArrayBufferLike> = Buffer.alloc(0);
  let done: ((status: number) => void) | undefined;
  socket.on("data", (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    const end = pending.indexOf("\r\n\r\n");
    if (end < 0) return;
    const head = pending.subarray(0, end).toString("latin1");
    const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? "0");
    if (pending.length < end + 4 + length) return;
    pending = pending.subarray(end + 4 + length);
    done?.(Number(head.slice(9, 12)));
  });
  const roundTrip = () =>
    new Promise<number>((resolve) => {
      done = resolve;
      socket.write(bytes);
    });
  const until = performance.now() + warmupMs;
  while (performance.now() < until) await roundTrip();
  const start = performance.now();
  while (performance.now() - start < ms) {
    const t0 = performance.now();
    const status = await roundTrip();
    if (status === 200) latencies.push(performance.now() - t0);
    else errors++;
  }
  const elapsed = performance.now() - start;
  socket.destroy();
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length,
    rps: (latencies.length * 1000) / elapsed,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    errors,
  };
}

// Closed-loop load: `connections` keep-alive connections, each with one
// request in flight, for `ms` after `warmupMs`.
async function load(
  request: (agent: http.Agent) => Promise<number>,
  makeAgent: () => http.Agent,
  connections: number,
  warmupMs: number,
  ms: number,
): Promise<Window> {
  const agents = Array.from({ length: connections }, makeAgent);
  const latencies: number[] = [];
  let errors = 0;
  let measuring = false;
  let stop = false;
  let windowStart = 0;
  const loops = agents.map(async (agent) => {
    while (!stop) {
      const t0 = performance.now();
      let status = 0;
      try {
        status = await request(agent);
      } catch {
        status = 0;
      }
      if (!measuring) continue;
      if (status === 200) latencies.push(performance.now() - t0);
      else errors++;
    }
  });
  await new Promise((r) => setTimeout(r, warmupMs));
  measuring = true;
  windowStart = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  measuring = false;
  const elapsed = performance.now() - windowStart;
  stop = true;
  await Promise.all(loops);
  for (const agent of agents) agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length,
    rps: latencies.length / (elapsed / 1000),
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    errors,
  };
}

function get(options: https.RequestOptions | http.RequestOptions, secure: boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = (secure ? https : http).request(options, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end();
  });
}

// utime + stime of a process, in ms.
async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

// The forward-auth handler alone, in process: reading the forwarded
// certificate, the decision and the answer's headers, without HTTP parsing.
function handlerNs(options: BenchOptions, certPem: string, sha256: string): number {
  const trustedProxies = { cidrs: ["127.0.0.1"] };
  const handler = createForwardAuthHandler({
    decide: createAuthzDecide(createDecisionCore({ store: createThumbprintStore([sha256]) })),
    trust: createTrustedProxyCheck(trustedProxies),
    readPeer: createForwardedPeerReader({ trustedProxies, formats: ["nginx"], nginxHeader: "x-client-cert" }),
  });
  const value = encodeURIComponent(certPem);
  const socket = { remoteAddress: "127.0.0.1" };
  const req = {
    headers: { host: "127.0.0.1", "x-client-cert": value, "x-original-uri": "/auth/x" },
    rawHeaders: ["Host", "127.0.0.1", "X-Client-Cert", value, "X-Original-URI", "/auth/x"],
    socket,
    readableEnded: true,
  };
  let admitted = 0;
  const res = {
    writableEnded: false,
    destroyed: false,
    setHeader() {},
    writeHead(status: number) {
      if (status === 200) admitted++;
    },
    end() {},
  };
  return createNsTimer(options, "authz-proxy").time((n) => {
    admitted = 0;
    for (let i = 0; i < n; i++) handler(req as never, res as never);
    return admitted;
  });
}

async function startNginx(
  dir: string,
  port: number,
  upstreamPort: number,
  authzPort: number,
  pki: BenchOptions["pki"],
) {
  const servers = `upstream certgate_authz { server 127.0.0.1:${authzPort}; keepalive 32; }
  upstream app { server 127.0.0.1:${upstreamPort}; keepalive 32; }
  server { listen 127.0.0.1:${upstreamPort}; location / { return 200 "ok"; } }
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${pki.server.certPath};
    ssl_certificate_key ${pki.server.keyPath};
    ssl_verify_client optional_no_ca;
    keepalive_requests 1000000;
    proxy_http_version 1.1;
    location = /_certgate {
      internal;
      proxy_pass http://certgate_authz;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Client-Cert $ssl_client_escaped_cert;
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header Connection "";
    }
    location /auth/ {
      auth_request /_certgate;
      auth_request_set $certgate_subject $upstream_http_certgate_subject;
      proxy_set_header Certgate-Subject $certgate_subject;
      proxy_set_header Connection "";
      proxy_pass http://app;
    }
    # proxy_set_header in a location replaces the server's: each says it.
    location /static/ { proxy_set_header Connection ""; proxy_pass http://app; }
  }`;
  const args = await writeNginxMain(dir, servers, { errorLevel: "error", workerConnections: 1024 });
  return spawn(nginxBinary, args, { stdio: "ignore" });
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}

export async function run(options: BenchOptions): Promise<SectionResult> {
  const { pki } = options;
  const warnings: string[] = [];
  const dir = await mkdtemp(join(tmpdir(), "certgate-bench-authz-"));
  const authzPort = await freePort();
  const nginxPort = await freePort();
  const upstreamPort = await freePort();
  const authz = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      join(repoRoot, "src", "cli.ts"),
      "authz",
      "--listen",
      `127.0.0.1:${authzPort}`,
      "--trusted-proxy",
      "127.0.0.1",
      "--forwarded",
      "nginx:X-Client-Cert",
      "--thumbprint",
      pki.alice.sha256,
    ],
    { cwd: repoRoot, stdio: ["ignore", "pipe", "inherit"] },
  );
  let out = "";
  authz.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  const nginx = await startNginx(dir, nginxPort, upstreamPort, authzPort, pki);
  try {
    await waitFor(() => /listening on/.test(out), "certgate authz to listen", 30_000);
    const ca = await readFile(pki.caPath, "utf8");
    const cert = await readFile(pki.alice.certPath, "utf8");
    const key = await readFile(pki.alice.keyPath, "utf8");
    const makeAgent = () => new https.Agent({ keepAlive: true, maxSockets: 1, ca, cert, key, servername: "localhost" });
    const through = (path: string) => (agent: http.Agent) =>
      get({ host: "127.0.0.1", port: nginxPort, path, agent, servername: "localhost" }, true);
    await waitFor(async () => (await through("/auth/x")(makeAgent()).catch(() => 0)) === 200, "nginx", 20_000);

    const connections = 16;
    const rounds = options.quick ? 2 : options.rounds;
    const warmupMs = options.quick ? 1000 : options.warmupMs;
    const durationMs = options.quick ? 2000 : options.durationMs;
    const results: { staticW: Window[]; authW: Window[]; cpuUs: number[] } = { staticW: [], authW: [], cpuUs: [] };
    for (let round = 0; round < rounds; round++) {
      options.log(`authz-proxy: round ${round + 1}/${rounds}`);
      const order = round % 2 === 0 ? ["static", "auth"] : ["auth", "static"];
      for (const which of order) {
        if (which === "static") {
          results.staticW.push(await load(through("/static/x"), makeAgent, connections, warmupMs, durationMs));
        } else {
          const before = await cpuMs(authz.pid!);
          const w = await load(through("/auth/x"), makeAgent, connections, warmupMs, durationMs);
          const after = await cpuMs(authz.pid!);
          results.authW.push(w);
          // The warm-up's requests ran too: CPU over all the requests decided.
          const total = w.rps * ((warmupMs + durationMs) / 1000);
          results.cpuUs.push(((after - before) * 1000) / total);
        }
      }
    }
    // certgate's own forward-auth round trip, one keep-alive connection,
    // from a client that costs what nginx's does: the request written as
    // pre-encoded bytes, the answer read to its end (Node's http client
    // would add its own tens of microseconds to every round trip).
    const header = encodeURIComponent(cert);
    const direct = await rawRoundTrips(
      authzPort,
      `GET /auth HTTP/1.1\r\nHost: 127.0.0.1\r\nx-client-cert: ${header}\r\n\r\n`,
      warmupMs,
      durationMs,
    );

    const inProcessNs = handlerNs(options, cert, pki.alice.sha256);
    const m = (ws: Window[], f: (w: Window) => number) => median(ws.map(f));
    const staticRps = m(results.staticW, (w) => w.rps);
    const authRps = m(results.authW, (w) => w.rps);
    const figure = (ws: Window[], key: "rps" | "p50Ms" | "p99Ms", digits: number) => {
      const value = m(ws, (w) => w[key]);
      return fixed(value, digits);
    };
    const row = (name: string, ws: Window[]) => [
      name,
      figure(ws, "rps", 0),
      figure(ws, "p50Ms", 2),
      figure(ws, "p99Ms", 2),
    ];
    for (const w of [...results.staticW, ...results.authW, direct]) {
      if (w.errors > 0) warnings.push(`${w.errors} requests failed in a window`);
    }
    const directUs = direct.p50Ms * 1000;
    if (directUs > targetUs)
      warnings.push(`certgate's forward-auth round trip p50 ${fixed(directUs, 0)} µs is above ${targetUs} µs`);
    const lines = [
      ...table(
        ["nginx, HTTPS/1.1 keep-alive, 16 connections", "requests/s", "p50 ms", "p99 ms"],
        [row("static allow", results.staticW), row("auth_request + certgate authz", results.authW)],
      ),
      `auth_request + certgate / static: ${fixed((authRps / staticRps) * 100, 0)}% of the requests/s (medians of ${rounds} interleaved rounds)`,
      `certgate's own forward-auth round trip on loopback (keep-alive, one at a time): p50 ${fixed(directUs, 0)} µs, p99 ${fixed(direct.p99Ms * 1000, 0)} µs (target p50 <= ${targetUs} µs)`,
      `certgate's forward-auth handler in process (certificate read, decision, answer headers; no HTTP parsing): ${fixed(inProcessNs / 1000, 2)} µs`,
      `certgate CPU per forward-auth request (through nginx, HTTP included): ${fixed(median(results.cpuUs), 1)} µs`,
    ];
    return {
      title: "authz-proxy: nginx + auth_request + certgate authz against nginx with a static allow",
      lines,
      warnings,
      data: { results, direct, staticRps, authRps, inProcessNs },
    };
  } finally {
    await stopChild(authz);
    await stopChild(nginx);
    await rm(dir, { recursive: true, force: true });
  }
}
