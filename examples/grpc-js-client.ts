// Calls examples/grpc-js-server.ts with an @grpc/grpc-js client, as alice
// (admitted), as bob (refused) and without a certificate (refused), and
// prints the reason certgate gives in the grpc-status-details-bin trailer.
//
//   npx tsx examples/grpc-js-client.ts
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { fromBinary } from "@bufbuild/protobuf";
import { BinaryReader } from "@bufbuild/protobuf/wire";
import { AnySchema, anyUnpack } from "@bufbuild/protobuf/wkt";
import { ClientCertificateErrorSchema } from "certgate/grpc-js";
import { ensureDemoPki } from "./dev-pki.js";

const pki = await ensureDemoPki();
const address = `localhost:${process.env.PORT ?? 8443}`;
const protoRoot = fileURLToPath(new URL("../proto", import.meta.url));
const definition = protoLoader.loadSync("certgate/example/v1/echo.proto", { includeDirs: [protoRoot] });
const proto = grpc.loadPackageDefinition(definition) as unknown as {
  certgate: { example: { v1: { EchoService: grpc.ServiceClientConstructor } } };
};

// The reason in google.rpc.Status.details (field 3), an Any holding a
// certgate.v1.ClientCertificateError, read with protobuf-es's wire reader.
function reasonOf(error: grpc.ServiceError): string {
  const bin = error.metadata.get("grpc-status-details-bin")[0];
  if (!Buffer.isBuffer(bin)) return "no detail";
  const reader = new BinaryReader(bin);
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field !== 3) {
      reader.skip(wireType);
      continue;
    }
    const detail = anyUnpack(fromBinary(AnySchema, reader.bytes()), ClientCertificateErrorSchema);
    if (detail !== undefined) return detail.reason;
  }
  return "no detail";
}

for (const who of ["alice", "bob", "nobody"] as const) {
  const own = who === "nobody" ? undefined : pki.read(who);
  const credentials = grpc.credentials.createSsl(
    Buffer.from(pki.caPem),
    own === undefined ? null : Buffer.from(own.key),
    own === undefined ? null : Buffer.from(own.cert),
  );
  const client = new proto.certgate.example.v1.EchoService(address, credentials) as unknown as grpc.Client & {
    echo(
      request: { text: string },
      callback: (error: grpc.ServiceError | null, response?: { text: string }) => void,
    ): void;
  };
  await new Promise<void>((resolve) => {
    client.echo({ text: "hello" }, (error: grpc.ServiceError | null, response?: { text: string }) => {
      if (error === null) console.log(`${who}: ${response?.text}`);
      else console.log(`${who}: refused, status ${error.code} (${error.details}), reason ${reasonOf(error)}`);
      client.close();
      resolve();
    });
  });
}
