// An API server that admits exactly the client certificates uploaded to the
// certificate store service, through createRemoteStore: upload one with
// `certgate upload` and it is admitted; delete it and the next call is
// refused, also on a connection that is already open.
//
//   npm start                               # terminal 1: the store, https://localhost:8444
//   npx tsx examples/store-api-server.ts    # terminal 2: this server, https://localhost:8445
//
// It uses the development certificates that `npm start` created in
// .certgate/store/dev: the server certificate for its own TLS, and the reader
// certificate to watch the store.
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { join, relative } from "node:path";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import {
  createClientCertGate,
  createRemoteStore,
  createTlsFiles,
  guardRequestHandler,
  peerCertificateContextValues,
  watchServerTls,
} from "certgate";
import { echoRoutes } from "./echo-service.js";

const dev = process.env.CERTGATE_DEV_DIR ?? join(".certgate", "store", "dev");
const storeUrl = process.env.CERTGATE_STORE ?? "https://localhost:8444";
const port = Number(process.env.PORT ?? 8445);

// The store keeps a local mirror fed by WatchCertificates: no network round
// trip per call, and a deletion reaches it within a second.
// The reader certificate is read from its files and followed: a renewed one
// is presented on the next connection, without a restart.
const store = createRemoteStore({
  clientCert: {
    baseUrl: storeUrl,
    cert: join(dev, "reader.pem"),
    key: join(dev, "reader-key.pem"),
    ca: join(dev, "ca.pem"),
  },
  onEvent: (e) => {
    if (e.kind === "synced") {
      console.log(`store synced: ${e.size} certificates`);
      return;
    }
    const cause = e.error instanceof Error ? e.error.message : String(e.error);
    const when = e.retryInMs < 50 ? "now" : `in ${(e.retryInMs / 1000).toFixed(1)} s`;
    console.log(`store ${storeUrl} unreachable (${cause}); retrying ${when}`);
  },
});

// The gate refuses before the request body is read.
const gate = createClientCertGate({
  store,
  onDecision: (e) => console.log(`${e.kind} ${e.procedure}${e.reason === undefined ? "" : ` (${e.reason})`}`),
});
// Guarded: a malformed request gets 400 instead of ending the process, and
// refused calls are answered before Connect builds anything for them.
const handler = guardRequestHandler(
  connectNodeAdapter({
    routes: echoRoutes((text, client) => `${text}, ${client?.subject.replace(/\n/g, ", ")}`),
    requestGate: gate,
    contextValues: peerCertificateContextValues,
    // The most an admitted call may send (Connect's default is 4 GiB).
    readMaxBytes: 1024 * 1024,
  }),
  { gate },
);

// The server's own certificate and key, followed on disk the same way.
const tls = createTlsFiles({ cert: join(dev, "server.pem"), key: join(dev, "server-key.pem") });
const server = http2.createSecureServer(
  {
    ...tls.secureContextOptions(),
    // certgate decides, not the TLS handshake.
    requestCert: true,
    rejectUnauthorized: false,
    allowHTTP1: true,
  },
  handler,
);
watchServerTls(server, tls);
server.listen(port, "localhost", () => {
  const { port } = server.address() as AddressInfo;
  const d = relative(process.cwd(), dev) || ".";
  console.log(`API server on https://localhost:${port}, admitting what ${storeUrl} holds. Try:`);
  console.log(
    `  curl --cacert ${d}/ca.pem --cert ${d}/client.pem --key ${d}/client-key.pem \\\n` +
      `    -H 'Content-Type: application/json' -d '{"text":"hello"}' \\\n` +
      `    https://localhost:${port}/certgate.example.v1.EchoService/Echo`,
  );
});

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    server.close();
    void store.close();
  });
}
