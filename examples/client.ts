// Calls examples/server.ts over the Connect and the gRPC protocol, once as
// alice (admitted) and once as bob (refused with Code.Unauthenticated).
//
//   npx tsx examples/client.ts
import { createClient, ConnectError } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { EchoService } from "certgate/example";
import { ensureDemoPki } from "./dev-pki.js";

const pki = await ensureDemoPki();
const baseUrl = `https://localhost:${process.env.PORT ?? 8443}`;

for (const who of ["alice", "bob"] as const) {
  const nodeOptions = { ca: pki.caPem, ...pki.read(who) };
  for (const [protocol, transport] of [
    ["connect", createConnectTransport({ baseUrl, httpVersion: "2", nodeOptions })],
    ["grpc", createGrpcTransport({ baseUrl, nodeOptions })],
  ] as const) {
    const client = createClient(EchoService, transport);
    try {
      const res = await client.echo({ text: "hello" });
      console.log(`${who} over ${protocol}: ${res.text}`);
    } catch (e) {
      const err = ConnectError.from(e);
      console.log(`${who} over ${protocol}: refused, code ${err.code} (${err.rawMessage})`);
    }
  }
}
