import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import {
  EchoClientStreamRequestSchema,
  EchoRequestSchema,
  EchoServerStreamRequestSchema,
  EchoService,
} from "../../src/gen/certgate/example/v1/echo_pb.js";

// A foreign gRPC client: @grpc/grpc-js with the service definition built from
// the generated descriptor (no proto-loader), so certgate is checked against
// an HTTP/2 and gRPC implementation that is not connect-node's.

function serializer<Desc extends DescMessage>(schema: Desc) {
  return (value: MessageShape<Desc>) => Buffer.from(toBinary(schema, value));
}

function deserializer<Desc extends DescMessage>(schema: Desc) {
  return (bytes: Buffer) => fromBinary(schema, bytes);
}

function serviceDefinition(): grpc.ServiceDefinition {
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const method of EchoService.methods) {
    definition[method.localName] = {
      path: `/${EchoService.typeName}/${method.name}`,
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: serializer(method.input) as (value: unknown) => Buffer,
      requestDeserialize: deserializer(method.input),
      responseSerialize: serializer(method.output) as (value: unknown) => Buffer,
      responseDeserialize: deserializer(method.output),
    };
  }
  return definition as grpc.ServiceDefinition;
}

/** The TLS material the grpc-js client uses: the CA to trust, and its own certificate. */
export interface GrpcJsClientTls {
  /** The CA certificate that signed the server's certificate, PEM. */
  ca: string;
  /** The client certificate, PEM; omit to present none. */
  cert?: string;
  /** The client certificate's private key, PEM. */
  key?: string;
}

/** GrpcJsEchoClient calls EchoService with @grpc/grpc-js. Failures reject with a grpc-js `ServiceError`. */
export interface GrpcJsEchoClient {
  echo(text: string): Promise<string>;
  echoServerStream(text: string, count: number): Promise<string[]>;
  echoClientStream(texts: string[]): Promise<string>;
  close(): void;
}

type Callback = (error: grpc.ServiceError | null, response?: { text: string }) => void;
interface RawClient extends grpc.Client {
  echo(request: unknown, callback: Callback): grpc.ClientUnaryCall;
  echoServerStream(request: unknown): grpc.ClientReadableStream<{ text: string }>;
  echoClientStream(callback: Callback): grpc.ClientWritableStream<unknown>;
}

/**
 * createGrpcJsEchoClient connects a @grpc/grpc-js client to `127.0.0.1:port`
 * over TLS, presenting `tls.cert` when given.
 */
export function createGrpcJsEchoClient(port: number, tls: GrpcJsClientTls): GrpcJsEchoClient {
  const Constructor = grpc.makeGenericClientConstructor(serviceDefinition(), EchoService.typeName);
  const credentials = grpc.credentials.createSsl(
    Buffer.from(tls.ca),
    tls.key === undefined ? null : Buffer.from(tls.key),
    tls.cert === undefined ? null : Buffer.from(tls.cert),
  );
  const client = new Constructor(`127.0.0.1:${port}`, credentials) as unknown as RawClient;
  const settle =
    (resolve: (text: string) => void, reject: (e: unknown) => void): Callback =>
    (error, response) =>
      error === null ? resolve(response?.text ?? "") : reject(error);
  return {
    echo(text) {
      return new Promise((resolve, reject) => {
        client.echo(create(EchoRequestSchema, { text }), settle(resolve, reject));
      });
    },
    echoServerStream(text, count) {
      return new Promise((resolve, reject) => {
        const texts: string[] = [];
        const call = client.echoServerStream(create(EchoServerStreamRequestSchema, { text, count }));
        call.on("data", (m: { text: string }) => texts.push(m.text));
        call.on("error", reject);
        call.on("end", () => resolve(texts));
      });
    },
    echoClientStream(texts) {
      return new Promise((resolve, reject) => {
        const call = client.echoClientStream(settle(resolve, reject));
        for (const text of texts) {
          call.write(create(EchoClientStreamRequestSchema, { text }));
        }
        call.end();
      });
    },
    close() {
      client.close();
    },
  };
}
