// An @grpc/grpc-js server that admits one client certificate, pinned by
// thumbprint, with certgate/grpc-js.
//
//   npx tsx examples/grpc-js-server.ts [THUMBPRINT]
//
// By default it pins alice's certificate from .certgate/demo (created on first
// run); pass any SHA-1 or SHA-256 thumbprint, in any spelling, to pin another.
// The service comes from proto/ through @grpc/proto-loader, as most grpc-js
// servers load theirs: no generated code is needed for grpc-js.
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import {
  clientCertificateOf,
  createClientCertServerInterceptor,
  createServerCredentials,
  createTlsFiles,
  createThumbprintStore,
} from "certgate/grpc-js";
import { parseCertificate } from "certgate";
import { ensureDemoPki } from "./dev-pki.js";

const pki = await ensureDemoPki();
const pinned = process.argv[2] ?? parseCertificate(pki.read("alice").cert).sha1;
const port = Number(process.env.PORT ?? 8443);

const protoRoot = fileURLToPath(new URL("../proto", import.meta.url));
const definition = protoLoader.loadSync("certgate/example/v1/echo.proto", { includeDirs: [protoRoot] });
const proto = grpc.loadPackageDefinition(definition) as unknown as {
  certgate: { example: { v1: { EchoService: grpc.ServiceClientConstructor } } };
};

type Text = { text: string };

const server = new grpc.Server({
  // Refuses calls from any other certificate, or none, before the handler runs.
  interceptors: [
    createClientCertServerInterceptor({
      store: createThumbprintStore(pinned),
      onDecision: (e) =>
        console.log(`${e.kind} ${e.procedure} ${e.thumbprint ?? "(no certificate)"}${e.reason ? ` ${e.reason}` : ""}`),
    }),
  ],
});
server.addService(proto.certgate.example.v1.EchoService.service, {
  echo(call: grpc.ServerUnaryCall<Text, Text>, callback: grpc.sendUnaryData<Text>) {
    callback(null, { text: `${call.request.text}, ${clientCertificateOf(call)?.subject}` });
  },
  echoServerStream(call: grpc.ServerWritableStream<Text & { count: number }, Text>) {
    for (let i = 0; i < call.request.count; i++) call.write({ text: call.request.text });
    call.end();
  },
  echoClientStream(call: grpc.ServerReadableStream<Text, Text>, callback: grpc.sendUnaryData<Text>) {
    let text = "";
    call.on("data", (m: Text) => (text += m.text));
    call.on("end", () => callback(null, { text }));
  },
});

// Asks every client for a certificate and lets self-signed ones complete the
// handshake: the interceptor is the gate. The certificate and key are
// followed on disk: a renewed pair reaches new connections without a restart.
const credentials = createServerCredentials({ files: createTlsFiles(pki.files.server) });
server.bindAsync(`0.0.0.0:${port}`, credentials, (error, bound) => {
  if (error) throw error;
  const f = pki.files;
  console.log(`listening on localhost:${bound}, pinned to ${pinned}

  npx buf curl --protocol grpc --schema proto --cacert ${pki.ca} \\
    --cert ${f.alice.cert} --key ${f.alice.key} \\
    -d '{"text":"hello"}' https://localhost:${bound}/certgate.example.v1.EchoService/Echo
  # {"text": "hello, CN=alice"}; with bob's certificate, or none: unauthenticated

  npx tsx examples/grpc-js-client.ts`);
});
