// certgate on Express: a Connect service over HTTPS (HTTP/1.1) that admits
// one client certificate, pinned by thumbprint.
//
//   npm install certgate express @connectrpc/connect-express@2.2.0 \
//     @connectrpc/connect@2.2.0 @connectrpc/connect-node@2.2.0 @bufbuild/protobuf
//   npx tsx examples/express-server.ts [THUMBPRINT]
//
// By default it pins alice's certificate from .certgate/demo (created on first
// run). Express serves HTTP/1.1 only: the Connect and gRPC-web protocols work,
// gRPC needs HTTP/2 (see examples/fastify-server.ts).
import * as https from "node:https";
import { expressConnectMiddleware } from "@connectrpc/connect-express";
import express from "express";
import {
  createClientCertGate,
  createThumbprintStore,
  guardRequestHandler,
  parseCertificate,
  peerCertificateContextValues,
  createTlsFiles,
  watchServerTls,
} from "certgate";
import { ensureDemoPki } from "./dev-pki.js";
import { echoRoutes } from "./echo-service.js";

const pki = await ensureDemoPki();
const pinned = process.argv[2] ?? parseCertificate(pki.read("alice").cert).sha1;
const port = Number(process.env.PORT ?? 8443);

const app = express();
app.use(
  // Answers a request Connect cannot represent (HTTP/1.0 without Host, an
  // unbracketed IPv6 Host) with 400, where Express would answer 500 with a
  // stack trace; other paths go on to the next middleware as before.
  guardRequestHandler(
    expressConnectMiddleware({
      routes: echoRoutes(),
      // Refuses unauthenticated calls before their body is read.
      requestGate: createClientCertGate({ store: createThumbprintStore(pinned) }),
      // Express passes Node's request: its socket is the TLS connection.
      contextValues: peerCertificateContextValues,
      // The most an admitted call may send (Connect's default is 4 GiB).
      readMaxBytes: 1024 * 1024,
    }),
  ),
);

// The server certificate and key, followed on disk (renewed without a restart).
const tls = createTlsFiles(pki.files.server);
const server = https.createServer({ ...tls.secureContextOptions(), requestCert: true, rejectUnauthorized: false }, app);
watchServerTls(server, tls);
server.listen(port, () => console.log(`listening on https://localhost:${port}, pinned to ${pinned}`));
