// The benchmark's echo server, run as a child process by bench/run.ts (one
// fresh process per measured run). It counts calls and measures its own CPU
// time between the parent's `mark` and `report` calls.
import * as http2 from "node:http2";
import { readFileSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { EchoService } from "../src/gen/certgate/example/v1/echo_pb.js";
// The modules themselves rather than src/index.ts: the server loads only the
// foundation it measures.
import { createClientCertGate } from "../src/interceptors/client-cert-gate.js";
import { createClientCertInterceptor } from "../src/interceptors/client-cert-interceptor.js";
import { peerCertificateContextValues } from "../src/peer.js";
import { createThumbprintStore } from "../src/stores/thumbprint-store.js";
import { childConfig, serveParent } from "./ipc.js";

/**
 * CertgateMode says how certgate guards the echo server: not at all (the
 * baseline), as an interceptor, as a request gate, or both.
 */
export type CertgateMode = "none" | "interceptor" | "gate" | "both";

/**
 * EchoServerConfig is what bench/run.ts passes to this child.
 */
export interface EchoServerConfig {
  /** How certgate guards the server. */
  certgate: CertgateMode;
  /** Thumbprints pinned in the thumbprint store (certgate modes only). */
  pins: string[];
  /** The server's certificate, PEM path. */
  certPath: string;
  /** The server's private key, PEM path. */
  keyPath: string;
  /**
   * Where to write a V8 CPU profile of the measurement window (from `mark` to
   * `report`); by default, undefined: no profile.
   */
  profilePath?: string;
}

/**
 * ServerWindow is what the server measured between `mark` and `report`.
 */
export interface ServerWindow {
  /** Requests that reached the Node request handler. */
  readonly requests: number;
  /** Calls that reached the Echo implementation (admitted). */
  readonly admitted: number;
  /** CPU time of the whole process (user + system), µs. */
  readonly cpuUs: number;
  /** The user-mode part of `cpuUs`, µs. */
  readonly userUs: number;
  /** The kernel-mode part of `cpuUs`, µs (syscalls: sockets, TLS records). */
  readonly systemUs: number;
  /** Wall time of the window, µs. */
  readonly wallUs: number;
  /** Event loop utilization over the window, 0..1. */
  readonly elu: number;
  /** TLS connections opened during the window. */
  readonly connections: number;
}

const config = childConfig<EchoServerConfig>();
let requests = 0;
let admitted = 0;
let connections = 0;

function routes(router: ConnectRouter): void {
  router.service(EchoService, {
    echo(req) {
      admitted++;
      return { text: req.text };
    },
  });
}

const mode = config.certgate;
const store = mode === "none" ? undefined : createThumbprintStore(config.pins);
const interceptors: Interceptor[] =
  store !== undefined && (mode === "interceptor" || mode === "both") ? [createClientCertInterceptor({ store })] : [];
const requestGate =
  store !== undefined && (mode === "gate" || mode === "both") ? createClientCertGate({ store }) : undefined;
const adapter = connectNodeAdapter({
  routes,
  interceptors,
  requestGate,
  // The baseline has no certgate at all: no context values either.
  contextValues: mode === "none" ? undefined : peerCertificateContextValues,
});

const server = http2.createSecureServer(
  {
    cert: readFileSync(config.certPath),
    key: readFileSync(config.keyPath),
    requestCert: true,
    rejectUnauthorized: false,
  },
  (req, res) => {
    requests++;
    adapter(req, res);
  },
);
server.on("secureConnection", () => {
  connections++;
});
server.on("sessionError", () => {
  // A load generator closing its sessions at the end of a run is expected.
});

// Profiles only the measurement window, so start-up and warm-up (and tsx's
// loader thread) stay out of the figures.
const profiler = config.profilePath === undefined ? undefined : new Session();
function post(method: string, params?: object): Promise<unknown> {
  return new Promise((resolve, reject) => {
    profiler?.post(method, params ?? {}, (error, result) => (error === null ? resolve(result) : reject(error)));
  });
}

let start = { cpu: process.cpuUsage(), wall: performance.now(), elu: performance.eventLoopUtilization(), requests, admitted, connections };

serveParent({
  listen: () =>
    new Promise<number>((resolve) => {
      server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port));
    }),
  mark: async () => {
    if (profiler !== undefined) {
      profiler.connect();
      await post("Profiler.enable");
      await post("Profiler.setSamplingInterval", { interval: 250 });
      await post("Profiler.start");
    }
    start = { cpu: process.cpuUsage(), wall: performance.now(), elu: performance.eventLoopUtilization(), requests, admitted, connections };
    return null;
  },
  report: async (): Promise<ServerWindow> => {
    const cpu = process.cpuUsage(start.cpu);
    const window: ServerWindow = {
      requests: requests - start.requests,
      admitted: admitted - start.admitted,
      cpuUs: cpu.user + cpu.system,
      userUs: cpu.user,
      systemUs: cpu.system,
      wallUs: (performance.now() - start.wall) * 1000,
      elu: performance.eventLoopUtilization(start.elu).utilization,
      connections: connections - start.connections,
    };
    if (profiler !== undefined && config.profilePath !== undefined) {
      const { profile } = (await post("Profiler.stop")) as { profile: unknown };
      writeFileSync(config.profilePath, JSON.stringify(profile));
      profiler.disconnect();
    }
    return window;
  },
});
