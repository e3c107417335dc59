// Runs certgate as if @opentelemetry/api were not installed (it is an
// optional peer dependency): a module hook and a require hook make every
// import and require of it fail the way a missing package does. Serves real
// TLS calls through the gate and the interceptor, admitted and refused, and
// prints one line per check; the tests compare them.
import * as http2 from "node:http2";
import { createRequire } from "node:module";
import { hidePackages } from "./hide-packages.mjs";

hidePackages(["@opentelemetry/api"], { require: true });

// The hooks work: the package is gone for this process, both ways.
const imported = await import("@opentelemetry/api").then(
  () => "imported",
  (error) => error.code,
);
let required;
try {
  createRequire(import.meta.url)("@opentelemetry/api");
  required = "required";
} catch (error) {
  required = error.code;
}
console.log(`opentelemetry hidden: ${imported}, ${required}`);

const certgate = await import("certgate");
const { createDevCa, issueDevCertificate } = await import("certgate/dev");
const { EchoService } = await import("certgate/example");
const { connectNodeAdapter, createGrpcTransport } = await import("@connectrpc/connect-node");
const { createClient, ConnectError } = await import("@connectrpc/connect");

const ca = await createDevCa();
const serverCert = await issueDevCertificate(ca, {
  commonName: "localhost",
  ipAddresses: ["127.0.0.1"],
  usages: ["server"],
});
const alice = await issueDevCertificate(ca, { commonName: "alice", usages: ["client"] });
const bob = await issueDevCertificate(ca, { commonName: "bob", usages: ["client"] });
const store = certgate.createMemoryStore({ certificates: [alice.der], metricsName: "allow-list" });
const options = { store, expiryWarningDays: 30, metricsProcedure: true };
const server = http2.createSecureServer(
  { cert: serverCert.cert, key: serverCert.key, requestCert: true, rejectUnauthorized: false },
  connectNodeAdapter({
    routes: (router) => router.service(EchoService, { echo: (req) => ({ text: req.text }) }),
    requestGate: certgate.createClientCertGate(options),
    interceptors: [certgate.createClientCertInterceptor(options)],
    contextValues: certgate.peerCertificateContextValues,
  }),
);
const sessions = new Set();
server.on("session", (session) => {
  sessions.add(session);
  session.on("close", () => sessions.delete(session));
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const call = async (client) => {
  const transport = createGrpcTransport({
    baseUrl: `https://127.0.0.1:${server.address().port}`,
    nodeOptions: { ca: ca.cert, cert: client.cert, key: client.key },
  });
  try {
    return (await createClient(EchoService, transport).echo({ text: "hi" })).text;
  } catch (error) {
    return ConnectError.from(error).rawMessage;
  }
};
console.log(`alice: ${await call(alice)}, ${await call(alice)}`);
console.log(`bob: ${await call(bob)}`);
await new Promise((resolve) => {
  server.close(resolve);
  for (const session of sessions) session.destroy();
});
await store.close();
console.log("closed");
