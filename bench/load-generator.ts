// The benchmark's load generator, run as a child process by bench/run.ts. It
// is built on raw node:http2 with pre-encoded request frames, because
// connect-node's own client costs about as much CPU as the server it drives.
import * as http2 from "node:http2";
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { childConfig, serveParent } from "./ipc.js";

/**
 * WireProtocol is the RPC protocol of the pre-encoded unary call.
 */
export type WireProtocol = "connect" | "grpc";

/**
 * LoadConfig is what bench/run.ts passes to this child.
 */
export interface LoadConfig {
  /** The RPC protocol of every call. */
  protocol: WireProtocol;
  /** The request path, such as `/certgate.example.v1.EchoService/Echo`. */
  path: string;
  /** The request body, base64: the serialized message (Connect) or a 5-byte-prefixed frame (gRPC). */
  body: string;
  /** The CA that issued the server's certificate, PEM path. */
  caPath: string;
  /** The client certificate to present, PEM path; by default, none. */
  certPath?: string;
  /** The client certificate's private key, PEM path. */
  keyPath?: string;
  /** HTTP/2 connections kept open (persistent mode). */
  sessions: number;
  /** Calls kept in flight at all times, spread over the sessions. */
  streams: number;
  /** Open a new connection (full TLS handshake) for every call instead. */
  connectionPerCall: boolean;
}

/**
 * LoadWindow is what the load generator measured between `mark` and `report`.
 */
export interface LoadWindow {
  /** Calls answered as admitted (HTTP 200, grpc-status 0). */
  readonly ok: number;
  /** Calls refused with Unauthenticated (HTTP 401 on Connect, grpc-status 16). */
  readonly refused: number;
  /** Anything else: other statuses, stream or session errors. */
  readonly failed: number;
  /** The first failure seen, for the report. */
  readonly firstFailure: string | undefined;
  /** This process's own CPU time (user + system), µs. */
  readonly cpuUs: number;
  /** Wall time of the window, µs. */
  readonly wallUs: number;
}

const config = childConfig<LoadConfig>();
const body = Buffer.from(config.body, "base64");
const tls = {
  ca: readFileSync(config.caPath),
  ...(config.certPath === undefined || config.keyPath === undefined
    ? {}
    : { cert: readFileSync(config.certPath), key: readFileSync(config.keyPath) }),
  servername: "localhost",
};
const headers: http2.OutgoingHttpHeaders =
  config.protocol === "connect"
    ? {
        ":method": "POST",
        ":path": config.path,
        "content-type": "application/proto",
        "connect-protocol-version": "1",
        "content-length": String(body.length),
      }
    : { ":method": "POST", ":path": config.path, "content-type": "application/grpc", te: "trailers" };

let authority = "";
let sessions: http2.ClientHttp2Session[] = [];
let running = false;
let inFlight = 0;
let ok = 0;
let refused = 0;
let failed = 0;
let firstFailure: string | undefined;

function fail(what: string): void {
  failed++;
  firstFailure ??= what;
}

function noop(): void {}

// One call on `session`; when it ends, `next` starts the following one, so
// the number of calls in flight stays fixed.
function call(session: http2.ClientHttp2Session, next: () => void): void {
  inFlight++;
  let status = 0;
  let grpcStatus: string | undefined;
  let errored = false;
  const stream = session.request(headers);
  stream.on("response", (h) => {
    status = Number(h[":status"]);
    grpcStatus ??= h["grpc-status"] as string | undefined;
  });
  stream.on("trailers", (t) => {
    grpcStatus = t["grpc-status"] as string | undefined;
  });
  stream.on("data", noop);
  stream.on("error", (error: Error) => {
    errored = true;
    fail(String(error));
  });
  stream.on("close", () => {
    inFlight--;
    if (!errored) {
      if (config.protocol === "connect") {
        if (status === 200) ok++;
        else if (status === 401) refused++;
        else fail(`HTTP ${status}`);
      } else if (status === 200 && grpcStatus === "0") ok++;
      else if (status === 200 && grpcStatus === "16") refused++;
      else fail(`HTTP ${status}, grpc-status ${grpcStatus}`);
    }
    if (running) next();
  });
  stream.end(body);
}

function openSession(): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(authority, tls);
    session.once("connect", () => resolve(session));
    session.once("error", reject);
  });
}

// Persistent mode: `streams` calls in flight spread over the open sessions.
function startPersistent(): void {
  for (let i = 0; i < config.streams; i++) {
    const session = sessions[i % sessions.length];
    if (session === undefined) throw new Error("no session");
    const loop = (): void => call(session, loop);
    loop();
  }
}

// Connection-per-call mode: each of `streams` slots opens a connection,
// makes one call and closes it, again and again.
function startConnectionPerCall(): void {
  for (let i = 0; i < config.streams; i++) {
    const loop = (): void => {
      const session = http2.connect(authority, tls);
      session.on("error", (error) => fail(String(error)));
      call(session, () => {
        session.close();
        loop();
      });
    };
    loop();
  }
}

let start = { cpu: process.cpuUsage(), wall: performance.now(), ok, refused, failed };

serveParent({
  connect: async (payload: { port: number }) => {
    authority = `https://127.0.0.1:${payload.port}`;
    if (!config.connectionPerCall) {
      sessions = await Promise.all(Array.from({ length: config.sessions }, openSession));
      for (const session of sessions) {
        session.on("error", (error) => fail(`session: ${String(error)}`));
        session.on("goaway", () => fail("session: goaway"));
      }
    }
    return null;
  },
  load: () => {
    running = true;
    if (config.connectionPerCall) startConnectionPerCall();
    else startPersistent();
    return null;
  },
  mark: () => {
    firstFailure = undefined;
    start = { cpu: process.cpuUsage(), wall: performance.now(), ok, refused, failed };
    return null;
  },
  report: (): LoadWindow => {
    const cpu = process.cpuUsage(start.cpu);
    return {
      ok: ok - start.ok,
      refused: refused - start.refused,
      failed: failed - start.failed,
      firstFailure,
      cpuUs: cpu.user + cpu.system,
      wallUs: (performance.now() - start.wall) * 1000,
    };
  },
  stop: async () => {
    running = false;
    const deadline = Date.now() + 10_000;
    while (inFlight > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    for (const session of sessions) session.close();
    return null;
  },
});
