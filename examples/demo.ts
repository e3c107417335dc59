// `npm run demo`: an example Connect service guarded by certgate on
// https://localhost:8443 that admits exactly one client certificate (alice's),
// with development certificates created on first run under .certgate/demo.
// It listens on localhost only; PORT and HOST change where
// (PORT=9443 npm run demo, HOST=0.0.0.0 for other machines).
import * as http2 from "node:http2";
import { relative } from "node:path";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { AddressInfo } from "node:net";
import {
  createClientCertGate,
  createThumbprintStore,
  guardRequestHandler,
  parseCertificate,
  peerCertificateContextValues,
} from "certgate";
import { ensureDemoPki } from "./dev-pki.js";
import { echoRoutes } from "./echo-service.js";

const port = Number(process.env.PORT ?? 8443);
const host = process.env.HOST ?? "localhost";
const pki = await ensureDemoPki();
const server = pki.read("server");
const alice = parseCertificate(pki.read("alice").cert);

// Pinned to alice's SHA-1 thumbprint, as a gateway policy would be.
const gate = createClientCertGate({
  store: createThumbprintStore(alice.sha1),
  onDecision: (e) => console.log(`${e.kind} ${e.procedure}${e.reason ? ` (${e.reason})` : ""}`),
});
// guardRequestHandler answers malformed requests with 400 instead of letting
// connect-node's adapter throw and end the process; with { gate } it also
// answers refused calls before Connect builds anything for them, and closes
// a connection that keeps sending them (GOAWAY after 100).
const handler = guardRequestHandler(
  connectNodeAdapter({
    routes: echoRoutes((text, client) => `${text} (from ${client?.subject.replace(/\n/g, ", ")})`),
    requestGate: gate,
    contextValues: peerCertificateContextValues,
    // The gate refuses before the body is read; admitted calls may send 1 MiB.
    readMaxBytes: 1024 * 1024,
  }),
  { gate },
);

const listener = http2
  .createSecureServer(
    // rejectUnauthorized: false lets self-signed client certificates through
    // the TLS handshake: certgate is then the gate.
    { ...server, requestCert: true, rejectUnauthorized: false, allowHTTP1: true },
    handler,
  )
  .once("error", (error: NodeJS.ErrnoException) => {
    // One line a newcomer can act on, instead of a stack trace.
    const reason = error.code === "EADDRINUSE" ? "address already in use" : error.message;
    console.error(
      `certgate demo: cannot listen on ${host}:${port}: ${reason}; choose another port with PORT=${port === 8443 ? 9443 : 8443} npm run demo`,
    );
    process.exit(1);
  })
  .listen(port, host, () => {
    const { port, address } = listener.address() as AddressInfo;
    // Curl reaches a wildcard address as localhost, which the certificate names.
    const shown = host === "0.0.0.0" || host === "::" ? "localhost" : host.includes(":") ? `[${host}]` : host;
    const dir = relative(process.cwd(), pki.dir) || ".";
    const curl = (who: string) =>
      `curl --http2 --cacert ${dir}/ca.pem --cert ${dir}/${who}.pem --key ${dir}/${who}-key.pem \\\n` +
      `  -H 'content-type: application/json' -d '{"text":"hello"}' \\\n` +
      `  https://${shown}:${port}/certgate.example.v1.EchoService/Echo`;
    console.log(`certgate demo listening on https://${shown}:${port} (bound to ${address}; PORT and HOST change it)`);
    console.log(`admitting one client certificate: alice, SHA-1 ${alice.sha1}\n`);
    console.log(`admitted (alice):\n${curl("alice")}\n`);
    console.log(`refused, 401 (bob):\n${curl("bob")}\n`);
    console.log(
      `refused, 401 (no certificate):\ncurl --http2 --cacert ${dir}/ca.pem -H 'content-type: application/json' -d '{"text":"hello"}' https://${shown}:${port}/certgate.example.v1.EchoService/Echo\n`,
    );
  });
