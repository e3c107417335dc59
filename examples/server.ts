// A Connect service that admits one client certificate, pinned by thumbprint.
//
//   npx tsx examples/server.ts [THUMBPRINT]
//
// By default it pins alice's certificate from .certgate/demo (created on first
// run); pass any SHA-1 or SHA-256 thumbprint, in any spelling, to pin another.
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import {
  createClientCertGate,
  createThumbprintStore,
  createTlsFiles,
  watchServerTls,
  guardRequestHandler,
  parseCertificate,
  peerCertificateContextValues,
} from "certgate";
import { ensureDemoPki } from "./dev-pki.js";
import { echoRoutes } from "./echo-service.js";

const pki = await ensureDemoPki();
const pinned = process.argv[2] ?? parseCertificate(pki.read("alice").cert).sha1;
const port = Number(process.env.PORT ?? 8443);

// Refuses before the request body is read: an unauthenticated client
// cannot make the server buffer an upload.
const gate = createClientCertGate({ store: createThumbprintStore(pinned) });
// The server certificate and key, followed on disk: a renewed pair reaches
// new connections without a restart.
const tls = createTlsFiles(pki.files.server);
const server = http2.createSecureServer(
  { ...tls.secureContextOptions(), requestCert: true, rejectUnauthorized: false, allowHTTP1: true },
  // Answers malformed requests with 400 instead of ending the process, and
  // refused calls before Connect builds anything for them (GOAWAY after 100).
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
  console.log(`listening on https://localhost:${port}, pinned to ${pinned}`);
});
