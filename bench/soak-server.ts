// The certgate side of `npm run soak`, run as a child process so that its
// CPU and resident memory are its own: a certificate store service on a
// memory store, and an API server following it (createRemoteStore, mirror
// mode) behind the gate and the fast refusal path.
import * as http2 from "node:http2";
import type { AddressInfo, Socket } from "node:net";
import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter, createGrpcTransport } from "@connectrpc/connect-node";
import { EchoService } from "../src/gen/certgate/example/v1/echo_pb.js";
import { createClientCertGate } from "../src/connect/client-cert-gate.js";
import { createFastRefusalHandler } from "../src/connect/fast-refusal.js";
import { peerCertificateContextValues } from "../src/connect/context-values.js";
import { createMemoryStore } from "../src/stores/memory-store.js";
import { createRemoteStore } from "../src/stores/remote-store.js";
import { createCertificateStoreServer } from "../src/service/certificate-store-server.js";
import { childConfig, serveParent } from "./ipc.js";

/** SoakServerConfig is what bench/soak.ts passes to this child. */
export interface SoakServerConfig {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
  /** The reader's certificate and key, for the API server's remote store. */
  readonly reader: { readonly cert: string; readonly key: string };
  /** SHA-256 thumbprints of the store service's admin and reader. */
  readonly adminSha256: string;
  readonly readerSha256: string;
}

/** SoakServers is the answer to `listen`. */
export interface SoakServers {
  readonly apiUrl: string;
  readonly serviceUrl: string;
  /** Whether the API server answers malformed authorities (guardRequestHandler exists). */
  readonly guarded: boolean;
}

const config = childConfig<SoakServerConfig>();
const service = createCertificateStoreServer({
  store: createMemoryStore(),
  cert: config.cert,
  key: config.key,
  access: { admin: { thumbprints: [config.adminSha256] }, reader: { thumbprints: [config.readerSha256] } },
  shutdownTimeoutMs: 200,
});
const sockets = new Set<Socket>();
let api: http2.Http2SecureServer | undefined;
let remote: ReturnType<typeof createRemoteStore> | undefined;

serveParent({
  listen: async (): Promise<SoakServers> => {
    const address = await service.listen(0);
    remote = createRemoteStore({
      transport: createGrpcTransport({ baseUrl: address.url, nodeOptions: { ca: config.ca, ...config.reader } }),
    });
    await remote.ready(10_000);
    const gate = createClientCertGate({ store: remote });
    const adapter = connectNodeAdapter({
      routes: (router: ConnectRouter) => router.service(EchoService, { echo: (req) => ({ text: req.text }) }),
      requestGate: gate,
      contextValues: peerCertificateContextValues,
      readMaxBytes: 64 * 1024,
    });
    // guardRequestHandler (malformed authorities) is used when this version has it.
    const index = (await import("../src/index.js")) as Record<string, unknown>;
    const guard =
      typeof index.guardRequestHandler === "function" ? (index.guardRequestHandler as <H>(h: H) => H) : undefined;
    const fast = createFastRefusalHandler(adapter, { gate });
    api = http2.createSecureServer(
      { cert: config.cert, key: config.key, requestCert: true, rejectUnauthorized: false },
      guard === undefined ? fast : guard(fast),
    );
    api.on("secureConnection", (s: Socket) => {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
    });
    api.on("sessionError", () => {});
    const server = api;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return {
      apiUrl: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
      serviceUrl: address.url,
      guarded: guard !== undefined,
    };
  },
  memory: () => {
    const m = process.memoryUsage();
    return { rss: m.rss, heapUsed: m.heapUsed, connections: sockets.size };
  },
  stop: async () => {
    await new Promise<void>((resolve) => {
      if (api === undefined) return resolve();
      api.close(() => resolve());
      for (const s of sockets) s.destroy();
    });
    remote?.close();
    await service.close();
    return null;
  },
});
