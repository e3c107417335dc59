// certgate on Fastify: a Connect service over HTTP/2 and HTTP/1.1 with TLS
// that admits one client certificate, pinned by thumbprint.
//
//   npm install certgate fastify @connectrpc/connect-fastify@2.2.0 \
//     @connectrpc/connect@2.2.0 @connectrpc/connect-node@2.2.0 @bufbuild/protobuf
//   npx tsx examples/fastify-server.ts [THUMBPRINT]
//
// By default it pins alice's certificate from .certgate/demo (created on first
// run). Connect, gRPC and gRPC-web clients all work.
import { fastifyConnectPlugin } from "@connectrpc/connect-fastify";
import { fastify } from "fastify";
import {
  createClientCertGate,
  createThumbprintStore,
  isMalformedRequest,
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

// The server certificate and key, followed on disk (renewed without a restart).
const tls = createTlsFiles(pki.files.server);
const server = fastify({
  http2: true,
  https: { ...tls.secureContextOptions(), allowHTTP1: true, requestCert: true, rejectUnauthorized: false },
});
watchServerTls(server.server, tls);
// The hook and Connect's routes in one plugin, so the hook sees only their
// requests (an HTTP/1.0 health check without Host elsewhere still works).
await server.register(async (connect) => {
  // Answers a request Connect cannot represent (HTTP/1.0 without Host, an
  // unbracketed IPv6 Host or :authority) with 400, where connect-fastify
  // would answer an empty 200 and log a stack trace each time.
  connect.addHook("onRequest", async (request, reply) => {
    if (isMalformedRequest(request.raw)) return reply.code(400).send("malformed request\n");
  });
  await connect.register(fastifyConnectPlugin, {
    routes: echoRoutes(),
    // Refuses unauthenticated calls before their body is read.
    requestGate: createClientCertGate({ store: createThumbprintStore(pinned) }),
    // Fastify passes its own request; certgate reads Node's (request.raw).
    contextValues: peerCertificateContextValues,
    // The most an admitted call may send (Connect's default is 4 GiB).
    readMaxBytes: 1024 * 1024,
  });
});
await server.listen({ port, host: "0.0.0.0" });
console.log(`listening on https://localhost:${port}, pinned to ${pinned}`);
