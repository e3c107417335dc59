// A Connect service that admits one client certificate, pinned by thumbprint.
//
//   npx tsx examples/server.ts [THUMBPRINT]
//
// By default it pins alice's certificate from .certgate/demo (created on first
// run); pass any SHA-1 or SHA-256 thumbprint, in any spelling, to pin another.
import * as http2 from "node:http2";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import {
  createClientCertInterceptor,
  createThumbprintStore,
  parseCertificate,
  peerCertificateContextValues,
} from "certgate";
import { ensureDemoPki } from "./dev-pki.js";
import { echoRoutes } from "./echo-service.js";

const pki = await ensureDemoPki();
const pinned = process.argv[2] ?? parseCertificate(pki.read("alice").cert).sha1;
const port = Number(process.env.PORT ?? 8443);

const server = http2.createSecureServer(
  { ...pki.read("server"), requestCert: true, rejectUnauthorized: false },
  connectNodeAdapter({
    routes: echoRoutes(),
    interceptors: [createClientCertInterceptor({ store: createThumbprintStore(pinned) })],
    contextValues: peerCertificateContextValues,
  }),
);
server.listen(port, () => console.log(`listening on https://localhost:${port}, pinned to ${pinned}`));
