import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary, type DescMessage } from "@bufbuild/protobuf";
import {
  EchoClientStreamRequestSchema,
  EchoClientStreamResponseSchema,
  EchoService,
} from "../../src/gen/certgate/example/v1/echo_pb.js";
import { clientCertificateOf, createServerCredentials, type Certificate } from "../../src/grpc-js/index.js";
import type { TestPki } from "./harness.js";

// A real @grpc/grpc-js server with EchoService (from the generated
// descriptor) plus a bidi-streaming method, EchoBidi, that echoes each
// message: the echo proto has no bidi RPC, and grpc-js needs none to serve
// one.

/** The path of the test-only bidi-streaming method. */
export const echoBidiPath = `/${EchoService.typeName}/EchoBidi`;

// Plain objects in, messages out: handlers and tests write `{ text }`.
function method(
  path: string,
  kind: string,
  input: DescMessage,
  output: DescMessage,
): grpc.MethodDefinition<unknown, unknown> {
  return {
    path,
    requestStream: kind === "client_streaming" || kind === "bidi_streaming",
    responseStream: kind === "server_streaming" || kind === "bidi_streaming",
    requestSerialize: (v) => Buffer.from(toBinary(input, create(input, v as never))),
    requestDeserialize: (b: Buffer) => fromBinary(input, b),
    responseSerialize: (v) => Buffer.from(toBinary(output, create(output, v as never))),
    responseDeserialize: (b: Buffer) => fromBinary(output, b),
  };
}

/** echoDefinition is EchoService with EchoBidi, for servers and clients. */
export function echoDefinition(): grpc.ServiceDefinition {
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const m of EchoService.methods) {
    definition[m.localName] = method(`/${EchoService.typeName}/${m.name}`, m.methodKind, m.input, m.output);
  }
  definition.echoBidi = method(
    echoBidiPath,
    "bidi_streaming",
    EchoClientStreamRequestSchema,
    EchoClientStreamResponseSchema,
  );
  return definition as grpc.ServiceDefinition;
}

/** What the handlers saw. */
export interface GrpcJsHandlerLog {
  /** Request messages the handlers received, as `procedure text`. */
  readonly messages: string[];
  /** `clientCertificateOf(call)` in each handler that ran. */
  readonly certificates: (Certificate | undefined)[];
  /** `call.getPeer()` of every call that reached the server, in order. */
  readonly peers: string[];
}

export interface GrpcJsEchoServer {
  readonly port: number;
  readonly log: GrpcJsHandlerLog;
  close(): Promise<void>;
}

export interface GrpcJsEchoServerOptions {
  pki: TestPki;
  /** Interceptors, after the one that records peers. */
  interceptors: grpc.ServerInterceptor[];
  /** Credentials; by default, `createServerCredentials` with the test server certificate. */
  credentials?: grpc.ServerCredentials;
}

/** Starts a grpc-js server on 127.0.0.1, port 0. */
export async function startGrpcJsEchoServer(options: GrpcJsEchoServerOptions): Promise<GrpcJsEchoServer> {
  const log: GrpcJsHandlerLog = { messages: [], certificates: [], peers: [] };
  const recordPeer: grpc.ServerInterceptor = (_method, call) => {
    log.peers.push(call.getPeer());
    return new grpc.ServerInterceptingCall(call);
  };
  const server = new grpc.Server({ interceptors: [recordPeer, ...options.interceptors] });
  const seen = (procedure: string, text: string) => log.messages.push(`${procedure} ${text}`);
  const textOf = (call: object) => {
    const certificate = clientCertificateOf(call);
    log.certificates.push(certificate);
    return certificate?.subject ?? "nobody";
  };
  server.addService(echoDefinition(), {
    echo(call: grpc.ServerUnaryCall<{ text: string }, unknown>, callback: grpc.sendUnaryData<unknown>) {
      seen("Echo", call.request.text);
      callback(null, { text: `${call.request.text} ${textOf(call)}` });
    },
    echoServerStream(call: grpc.ServerWritableStream<{ text: string; count: number }, unknown>) {
      seen("EchoServerStream", call.request.text);
      const who = textOf(call);
      for (let i = 0; i < call.request.count; i++) call.write({ text: `${call.request.text} ${who}` });
      call.end();
    },
    echoClientStream(
      call: grpc.ServerReadableStream<{ text: string }, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) {
      const who = textOf(call);
      const texts: string[] = [];
      call.on("data", (m: { text: string }) => {
        seen("EchoClientStream", m.text);
        texts.push(m.text);
      });
      call.on("end", () => callback(null, { text: `${texts.join(",")} ${who}` }));
    },
    echoBidi(call: grpc.ServerDuplexStream<{ text: string }, unknown>) {
      const who = textOf(call);
      call.on("data", (m: { text: string }) => {
        seen("EchoBidi", m.text);
        call.write({ text: `${m.text} ${who}` });
      });
      call.on("end", () => call.end());
    },
  });
  const credentials =
    options.credentials ?? createServerCredentials({ cert: options.pki.server.cert, key: options.pki.server.key });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", credentials, (error, p) => (error ? reject(error) : resolve(p))),
  );
  return {
    port,
    log,
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        // Open client connections would hold tryShutdown; end them.
        setImmediate(() => server.forceShutdown());
      }),
  };
}

/** GrpcJsBidiClient adds the bidi method to the test client. */
export function createBidiClient(
  port: number,
  tls: { ca: string; cert?: string; key?: string },
  options?: grpc.ChannelOptions,
) {
  const Constructor = grpc.makeGenericClientConstructor(echoDefinition(), EchoService.typeName);
  const credentials = grpc.credentials.createSsl(
    Buffer.from(tls.ca),
    tls.key === undefined ? null : Buffer.from(tls.key),
    tls.cert === undefined ? null : Buffer.from(tls.cert),
  );
  return new Constructor(`127.0.0.1:${port}`, credentials, options) as unknown as EchoBidiRawClient;
}

type Callback = (error: grpc.ServiceError | null, response?: { text: string }) => void;

/** The raw grpc-js client of echoDefinition(). */
export interface EchoBidiRawClient extends grpc.Client {
  echo(request: unknown, metadata: grpc.Metadata, callback: Callback): grpc.ClientUnaryCall;
  echoServerStream(request: unknown, metadata?: grpc.Metadata): grpc.ClientReadableStream<{ text: string }>;
  echoClientStream(callback: Callback): grpc.ClientWritableStream<unknown>;
  echoBidi(metadata?: grpc.Metadata): grpc.ClientDuplexStream<unknown, { text: string }>;
}
