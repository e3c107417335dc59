// The benchmark's echo server, run as a child process by bench/run.ts (one
// fresh process per measured run). It counts calls and measures its own CPU
// time between the parent's `mark` and `report` calls.
import * as http2 from "node:http2";
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { EchoService } from "../src/gen/certgate/example/v1/echo_pb.js";
// The modules themselves rather than src/index.ts: the server loads only the
// foundation it measures.
import { createClientCertGate } from "../src/connect/client-cert-gate.js";
import { createFastRefusalHandler } from "../src/connect/fast-refusal.js";
import { createClientCertInterceptor } from "../src/connect/client-cert-interceptor.js";
import { peerCertificateContextValues } from "../src/connect/context-values.js";
import { createThumbprintStore } from "../src/stores/thumbprint-store.js";
import { childConfig, serveParent } from "./ipc.js";
import { createBenchMeterProvider } from "./metrics-provider.js";
import { createWindowMeter, type ServerWindow } from "./server-window.js";
import { createWindowProfiler } from "./window-profiler.js";

/**
 * CertgateMode says how certgate guards the echo server: not at all (the
 * baseline), as an interceptor, as a request gate, or both; `gate-metrics`
 * is the gate recording OpenTelemetry metrics (see bench/metrics-cost.ts),
 * `fast` the gate behind createFastRefusalHandler (see bench/refusal-cost.ts).
 */
export type CertgateMode = "none" | "interceptor" | "gate" | "both" | "gate-metrics" | "fast";

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

export type { ServerWindow } from "./server-window.js";

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
// fast: the gate, with createFastRefusalHandler around the adapter (no
// GOAWAY bound, so that refusals stay on persistent connections).
const requestGate =
  store !== undefined && (mode === "gate" || mode === "both" || mode === "fast")
    ? createClientCertGate({ store })
    : store !== undefined && mode === "gate-metrics"
      ? createClientCertGate({ store, meterProvider: createBenchMeterProvider() })
      : undefined;
const adapter = connectNodeAdapter({
  routes,
  interceptors,
  requestGate,
  // The baseline has no certgate at all: no context values either.
  contextValues: mode === "none" ? undefined : peerCertificateContextValues,
});

const handler =
  mode === "fast" && requestGate !== undefined
    ? createFastRefusalHandler(adapter, { gate: requestGate, maxRefusedCallsPerConnection: Infinity })
    : adapter;

const server = http2.createSecureServer(
  {
    cert: readFileSync(config.certPath),
    key: readFileSync(config.keyPath),
    requestCert: true,
    rejectUnauthorized: false,
  },
  (req, res) => {
    requests++;
    handler(req, res);
  },
);
server.on("secureConnection", () => {
  connections++;
});
server.on("sessionError", () => {
  // A load generator closing its sessions at the end of a run is expected.
});

const profiler = createWindowProfiler(config.profilePath);
const meter = createWindowMeter(() => ({ requests, admitted, connections }));

serveParent({
  listen: () =>
    new Promise<number>((resolve) => {
      server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port));
    }),
  mark: async () => {
    await profiler.start();
    meter.mark();
    return null;
  },
  report: async (): Promise<ServerWindow> => {
    const window = meter.report();
    await profiler.stop();
    return window;
  },
});
