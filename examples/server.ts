// A Connect service that admits one client certificate, pinned by thumbprint.
//
//   npx tsx examples/server.ts [THUMBPRINT]
//
// By default it pins alice's certificate from .certgate/demo (created on first
// run); pass any SHA-1 or SHA-256 thumbprint, in any spelling, to pin another.
import * as http2 from "node:http2";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import {
  clientCertificateKey,
  createClientCertInterceptor,
  createThumbprintStore,
  parseCertificate,
  peerCertificateContextValues,
} from "certgate";
import { EchoService } from "certgate/example";
import { ensureDemoPki } from "./dev-pki.js";

const pki = await ensureDemoPki();
const pinned = process.argv[2] ?? parseCertificate(pki.read("alice").cert).sha1;
const port = Number(process.env.PORT ?? 8443);

const server = http2.createSecureServer(
  { ...pki.read("server"), requestCert: true, rejectUnauthorized: false },
  connectNodeAdapter({
    routes: (router) =>
      router.service(EchoService, {
        echo(req, ctx) {
          const cert = ctx.values.get(clientCertificateKey);
          return { text: `${req.text}, ${cert?.subject ?? "?"}` };
        },
        async *echoServerStream(req) {
          for (let i = 0; i < req.count; i++) yield { text: req.text };
        },
        async echoClientStream(reqs) {
          let text = "";
          for await (const r of reqs) text += r.text;
          return { text };
        },
      }),
    interceptors: [createClientCertInterceptor({ store: createThumbprintStore(pinned) })],
    contextValues: peerCertificateContextValues,
  }),
);
server.listen(port, () => console.log(`listening on https://localhost:${port}, pinned to ${pinned}`));
