// A Connect service that admits the client certificates found in a folder,
// and follows the folder as it changes.
//
//   npx tsx examples/directory-store-server.ts [FOLDER]
//
// FOLDER defaults to .certgate/clients; on first run it is created holding
// alice's certificate from .certgate/demo (created too). Copy bob.pem from
// .certgate/demo into it, or delete alice.pem, while the server runs: the
// next call sees it, on connections already open too.
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { join, resolve } from "node:path";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import {
  createClientCertGate,
  createDirectoryStore,
  guardRequestHandler,
  peerCertificateContextValues,
  createTlsFiles,
  watchServerTls,
} from "certgate";
import { ensureDemoPki } from "./dev-pki.js";
import { echoRoutes } from "./echo-service.js";

const pki = await ensureDemoPki();
const directory = resolve(process.argv[2] ?? join(".certgate", "clients"));
if (!existsSync(directory)) {
  mkdirSync(directory, { recursive: true });
  copyFileSync(pki.files.alice.cert, join(directory, "alice.pem"));
}
const port = Number(process.env.PORT ?? 8443);

const store = await createDirectoryStore({
  directory,
  onProblem: (p) => console.warn(`skipped ${p.path}: ${p.reason}`),
});
store.onChanges((changes, revision) => {
  for (const c of changes)
    console.log(`revision ${revision}: ${c.kind === "put" ? "admitting" : "no longer admitting"} ${c.id}`);
});

// The gate refuses before the request body is read.
const gate = createClientCertGate({ store });
// The server certificate and key, followed on disk (renewed without a restart).
const tls = createTlsFiles(pki.files.server);
const server = http2.createSecureServer(
  { ...tls.secureContextOptions(), requestCert: true, rejectUnauthorized: false, allowHTTP1: true },
  // Guarded: a malformed request gets 400 instead of ending the process, and
  // refused calls are answered before Connect builds anything for them.
  guardRequestHandler(
    connectNodeAdapter({
      routes: echoRoutes(),
      requestGate: gate,
      contextValues: peerCertificateContextValues,
      // The most an admitted call may send (Connect's default is 4 GiB).
      readMaxBytes: 1024 * 1024,
    }),
    { gate },
  ),
);

watchServerTls(server, tls);
server.listen(port, () => {
  const { port } = server.address() as AddressInfo;
  const { files, ca } = pki;
  console.log(
    `listening on https://localhost:${port}, admitting the ${store.stats().certificates} certificate(s) in ${directory}`,
  );
  console.log(`try: curl --cacert ${ca} --cert ${files.alice.cert} --key ${files.alice.key} \\
  -H 'content-type: application/json' -d '{"text":"hello"}' \\
  https://localhost:${port}/certgate.example.v1.EchoService/Echo`);
});

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    server.close();
    void store.close();
  });
}
