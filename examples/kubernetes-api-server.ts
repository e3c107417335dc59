// The API server of docs/kubernetes.md: a Connect service on Kubernetes
// whose certificates all come from mounted Secrets and ConfigMaps, and
// follow them without restarts.
//
//   TLS_DIR      its serving certificate: tls.crt, tls.key (a Secret)
//   CLIENTS_DIR  when set, admit the client certificates in this folder
//                (a mounted ConfigMap or Secret: the folder store)
//   READER_DIR   otherwise, admit what the certificate store service at
//                CERTGATE_STORE holds, mirrored with the reader certificate
//                in this folder: tls.crt, tls.key, ca.crt (a Secret)
//   PORT         where to listen; by default, 8443
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import {
  createClientCertGate,
  createDirectoryStore,
  createRemoteStore,
  createTlsFiles,
  guardRequestHandler,
  peerCertificateContextValues,
  watchServerTls,
  type CertificateStore,
} from "certgate";
import { echoRoutes } from "./echo-service.js";

const env = (name: string, fallback?: string): string => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};
const tlsDir = env("TLS_DIR", "/etc/api/tls");
const port = Number(env("PORT", "8443"));

let store: CertificateStore;
const clients = process.env.CLIENTS_DIR;
if (clients !== undefined) {
  // The folder store follows the kubelet's ..data swap: every added,
  // removed or changed file is seen, once.
  store = await createDirectoryStore({
    directory: clients,
    onProblem: (p) => console.warn(`skipped ${p.path}: ${p.reason}`),
  });
} else {
  const reader = env("READER_DIR", "/etc/api/reader");
  const remote = createRemoteStore({
    // The reader certificate is followed on disk: a renewal reaches the
    // next connection to the store.
    clientCert: {
      baseUrl: env("CERTGATE_STORE"),
      cert: join(reader, "tls.crt"),
      key: join(reader, "tls.key"),
      ca: join(reader, "ca.crt"),
    },
    onEvent: (e) => {
      if (e.kind === "synced") console.log(`store synced: ${e.size} certificates`);
    },
  });
  await remote.ready(30_000);
  store = remote;
}

const gate = createClientCertGate({ store });
// The serving certificate: new handshakes get a renewed one, open
// connections keep theirs. Each reload and refused set is logged.
const tls = createTlsFiles({ cert: join(tlsDir, "tls.crt"), key: join(tlsDir, "tls.key") });
const server = http2.createSecureServer(
  { ...tls.secureContextOptions(), requestCert: true, rejectUnauthorized: false, allowHTTP1: true },
  guardRequestHandler(
    connectNodeAdapter({
      routes: echoRoutes(),
      requestGate: gate,
      contextValues: peerCertificateContextValues,
      readMaxBytes: 1024 * 1024,
    }),
    { gate },
  ),
);
watchServerTls(server, tls);
server.listen(port, () => {
  console.log(`listening on https://localhost:${(server.address() as AddressInfo).port}`);
});
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    server.close();
    tls.close();
    void store.close();
  });
}
