// The benchmark's grpc-js echo server, run as a child process by bench/run.ts
// like echo-server.ts (one fresh process per measured run): @grpc/grpc-js
// serving EchoService.Echo, bare or behind certgate/grpc-js. It counts calls
// and measures its own CPU time between the parent's `mark` and `report`.
import http2 from "node:http2";
import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { EchoRequestSchema, EchoResponseSchema } from "../src/gen/certgate/example/v1/echo_pb.js";
// The modules themselves rather than the entry point, as echo-server.ts does.
import { createClientCertServerInterceptor } from "../src/grpc-js/client-cert-server-interceptor.js";
import { createServerCredentials } from "../src/grpc-js/server-credentials.js";
import { createThumbprintStore } from "../src/stores/thumbprint-store.js";
import { childConfig, serveParent } from "./ipc.js";
import { createWindowMeter, type ServerWindow } from "./server-window.js";
import { createWindowProfiler } from "./window-profiler.js";

/**
 * GrpcJsMode says how the grpc-js server is guarded: not at all (the
 * baseline), by certgate's interceptor, or by a pass-through interceptor
 * that reads `call.getAuthContext()` on every call, which is how grpc-js
 * users read the peer certificate without certgate (it needs a `ca` that
 * verifies the client, and calls getPeerCertificate() per call).
 */
export type GrpcJsMode = "none" | "interceptor" | "auth-context";

/** GrpcJsServerConfig is what bench/run.ts passes to this child. */
export interface GrpcJsServerConfig {
  mode: GrpcJsMode;
  /** Thumbprints pinned in the thumbprint store (interceptor mode). */
  pins: string[];
  certPath: string;
  keyPath: string;
  /** The CA of the client certificates, PEM path (auth-context mode). */
  caPath: string;
  /** Where to write a CPU profile of the measurement window; by default, none. */
  profilePath?: string;
}

const config = childConfig<GrpcJsServerConfig>();
let requests = 0;
let admitted = 0;
let connections = 0;

// grpc-js creates its HTTP/2 server at bind time through the node:http2
// module object; counting streams and connections there costs every variant
// the same and keeps the counters out of the call path being measured.
const createSecureServer = http2.createSecureServer;
http2.createSecureServer = ((...args: Parameters<typeof createSecureServer>) => {
  const server = createSecureServer(...args);
  server.on("stream", () => {
    requests++;
  });
  server.on("secureConnection", () => {
    connections++;
  });
  return server;
}) as typeof createSecureServer;

let peerCertificates = 0;
const authContext: grpc.ServerInterceptor = (_method, call) => {
  if (call.getAuthContext().sslPeerCertificate !== undefined) peerCertificates++;
  return new grpc.ServerInterceptingCall(call);
};

const interceptors: grpc.ServerInterceptor[] =
  config.mode === "interceptor"
    ? [
        createClientCertServerInterceptor({
          store: createThumbprintStore(config.pins),
          // The refused runs measure a refusal's cost on a connection that
          // stays open, as refusal-cost does for Connect.
          maxRefusedCallsPerConnection: Number.POSITIVE_INFINITY,
        }),
      ]
    : config.mode === "auth-context"
      ? [authContext]
      : [];
const server = new grpc.Server({ interceptors });
server.addService(
  {
    echo: {
      path: "/certgate.example.v1.EchoService/Echo",
      requestStream: false,
      responseStream: false,
      requestSerialize: (v: unknown) => Buffer.from(toBinary(EchoRequestSchema, v as never)),
      requestDeserialize: (b: Buffer) => fromBinary(EchoRequestSchema, b),
      responseSerialize: (v: unknown) => Buffer.from(toBinary(EchoResponseSchema, v as never)),
      responseDeserialize: (b: Buffer) => fromBinary(EchoResponseSchema, b),
    },
  },
  {
    echo(call: grpc.ServerUnaryCall<{ text: string }, unknown>, callback: grpc.sendUnaryData<unknown>) {
      admitted++;
      callback(null, create(EchoResponseSchema, { text: call.request.text }));
    },
  },
);

const cert = readFileSync(config.certPath);
const key = readFileSync(config.keyPath);
// The baseline asks for client certificates too, so that every variant does
// the same TLS work; only the gate differs.
const credentials =
  config.mode === "auth-context"
    ? grpc.ServerCredentials.createSsl(readFileSync(config.caPath), [{ private_key: key, cert_chain: cert }], true)
    : createServerCredentials({ cert, key });

const profiler = createWindowProfiler(config.profilePath);
const meter = createWindowMeter(() => ({ requests, admitted, connections }));

serveParent({
  listen: () =>
    new Promise<number>((resolve, reject) => {
      server.bindAsync("127.0.0.1:0", credentials, (error, port) => (error ? reject(error) : resolve(port)));
    }),
  mark: async () => {
    await profiler.start();
    meter.mark();
    return null;
  },
  report: async (): Promise<ServerWindow> => {
    const window = meter.report();
    await profiler.stop();
    if (config.mode === "auth-context" && peerCertificates === 0) {
      throw new Error("auth-context: getAuthContext() never saw a peer certificate");
    }
    return window;
  },
});
