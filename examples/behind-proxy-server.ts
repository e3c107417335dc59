// The echo service behind a proxy that terminates TLS (Envoy, Istio, nginx,
// Azure App Service, AWS ALB) and forwards the client certificate in a header.
// The service itself speaks plaintext on 127.0.0.1 and believes the header
// only from 127.0.0.1, where the proxy runs.
//
//   npx tsx examples/behind-proxy-server.ts [THUMBPRINT]
//
// FORMAT is what the proxy sends: xfcc (default: Envoy, Istio), nginx (in the
// header NGINX_HEADER, default x-ssl-client-cert), azure-app-service, aws-alb.
// It listens with HTTP/2 without TLS (h2c, for Envoy and gRPC) on PORT
// (default 8080) and with HTTP/1.1 on PORT + 1 (nginx's proxy_pass, App
// Service; PORT=0 picks two free ports). By default it pins alice's
// certificate from .certgate/demo.
import * as http from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import {
  createClientCertGate,
  createPeerCertificateContextValues,
  createThumbprintStore,
  guardRequestHandler,
  parseCertificate,
  type ForwardingFormat,
} from "certgate";
import { ensureDemoPki } from "./dev-pki.js";
import { echoRoutes } from "./echo-service.js";

const pki = await ensureDemoPki();
const pinned = process.argv[2] ?? parseCertificate(pki.read("alice").cert).sha1;
const format = (process.env.FORMAT ?? "xfcc") as ForwardingFormat;
const nginxHeader = process.env.NGINX_HEADER ?? "x-ssl-client-cert";
const derBase64Header = process.env.DER_BASE64_HEADER ?? "x-client-cert-der";
const port = Number(process.env.PORT ?? 8080);

// The gate refuses before the request body is read.
const gate = createClientCertGate({
  store: createThumbprintStore(pinned),
  onDecision: (e) =>
    console.log(
      `${e.kind} ${e.procedure} source=${e.source} reason=${e.reason ?? "-"}` +
        (e.ignoredForwardingHeaders ? ` ignored=${e.ignoredForwardingHeaders.join(",")}` : ""),
    ),
});
// Throws at start-up on a malformed range, an unknown format, or nginx
// without its header name.
const contextValues = createPeerCertificateContextValues({
  trustedProxies: { cidrs: ["127.0.0.1/32", "::1/128"] },
  formats: [format],
  ...(format === "nginx" ? { nginxHeader } : {}),
  ...(format === "der-base64" ? { derBase64Header } : {}),
});
// Guarded: a malformed request gets 400 instead of ending the process; with
// { gate }, refused calls of a direct client are answered before Connect
// builds anything (a trusted proxy's connection always goes to Connect).
const handler = guardRequestHandler(
  connectNodeAdapter({
    routes: echoRoutes(),
    requestGate: gate,
    contextValues,
    // The most an admitted call may send (Connect's default is 4 GiB).
    readMaxBytes: 1024 * 1024,
  }),
  { gate, contextValues },
);

const listening = (server: http.Server | http2.Http2Server, at: number) =>
  new Promise<number>((resolve) =>
    server.listen(at, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)),
  );
const h2cPort = await listening(http2.createServer(handler), port);
const h1Port = await listening(http.createServer(handler), port === 0 ? 0 : port + 1);

// What a proxy would send for alice, so the service can be tried without one.
const pem = pki.files.alice.cert;
const header: Record<ForwardingFormat, string> = {
  xfcc: `x-forwarded-client-cert: Cert=$(jq -sRr @uri ${pem})`,
  nginx: `${nginxHeader}: $(jq -sRr @uri ${pem})`,
  "aws-alb": `x-amzn-mtls-clientcert: $(jq -sRr @uri ${pem})`,
  "azure-app-service": `x-arr-clientcert: $(openssl x509 -in ${pem} -outform der | base64 -w0)`,
  "der-base64": `${derBase64Header}: $(openssl x509 -in ${pem} -outform der | base64 -w0)`,
};
console.log(`listening on h2c://127.0.0.1:${h2cPort} and http://127.0.0.1:${h1Port}, ${format}, pinned to ${pinned}`);
console.log(`try, as the proxy would forward alice:
  curl --http2-prior-knowledge -H 'content-type: application/json' -H "${header[format]}" \\
    -d '{"text":"hello"}' http://127.0.0.1:${h2cPort}/certgate.example.v1.EchoService/Echo`);
