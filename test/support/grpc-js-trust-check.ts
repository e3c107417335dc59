// Run as a process (NODE_EXTRA_CA_CERTS is read when Node starts): a grpc-js
// server with createServerCredentials and validateTrust: "tls", one call
// from CERTGATE_TEST_CLIENT, and one line on stdout: "admitted", or the
// refusal's reason. The PEMs come in the environment; with
// CERTGATE_TEST_SERVER_CA the server is given `ca`.
import { parseCertificate } from "../../src/index.js";
import {
  createClientCertServerInterceptor,
  createServerCredentials,
  createThumbprintStore,
} from "../../src/grpc-js/index.js";
import { callEcho, refusalOf } from "./grpc-js-calls.js";
import { createBidiClient, startGrpcJsEchoServer } from "./grpc-js-echo-server.js";
import type { TestPki } from "./harness.js";

const env = (name: string) => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};
const server = { cert: env("CERTGATE_TEST_SERVER_CERT"), key: env("CERTGATE_TEST_SERVER_KEY") };
const client = { cert: env("CERTGATE_TEST_CLIENT_CERT"), key: env("CERTGATE_TEST_CLIENT_KEY") };
const ca = process.env.CERTGATE_TEST_SERVER_CA;
const running = await startGrpcJsEchoServer({
  pki: { server } as unknown as TestPki,
  interceptors: [
    createClientCertServerInterceptor({
      store: createThumbprintStore(parseCertificate(client.cert).sha256),
      validateTrust: "tls",
    }),
  ],
  credentials: createServerCredentials({ ...server, ...(ca === undefined ? {} : { ca }) }),
});
const grpcClient = createBidiClient(running.port, { ca: env("CERTGATE_TEST_CA"), ...client });
try {
  const call = callEcho(grpcClient, "unary", "hi");
  const outcome = await call.then(
    () => "admitted",
    async () => (await refusalOf(call)).reason ?? "refused",
  );
  console.log(outcome);
} finally {
  grpcClient.close();
  await running.close();
}
