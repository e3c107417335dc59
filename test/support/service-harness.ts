// Helpers for the certificate store service and remote store suites: a PKI
// with admin and reader certificates, a running service, clients (connect-node
// and @grpc/grpc-js) and a helper to read a watch.
import * as grpc from "@grpc/grpc-js";
import { fromBinary, toBinary, type DescMessage, type DescService, type MessageShape } from "@bufbuild/protobuf";
import { type Code, ConnectError, createClient, type Client, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import {
  CertificateStoreService,
  type WatchCertificatesResponse,
} from "../../src/gen/certgate/v1/certificate_store_pb.js";
import { parseCertificate } from "../../src/core/certificate.js";
import { createDevCa, issueDevCertificate, type IssuedCertificate } from "../../src/dev-certificates.js";
import type { WritableCertificateStore } from "../../src/core/store.js";
import {
  createCertificateStoreServer,
  type CertificateStoreServer,
  type CertificateStoreServerOptions,
} from "../../src/service/certificate-store-server.js";

/** The PKI of a service test file. */
export interface ServicePki {
  ca: IssuedCertificate;
  server: IssuedCertificate;
  admin: IssuedCertificate;
  reader: IssuedCertificate;
  /** Issued by the same CA, on no list. */
  stranger: IssuedCertificate;
  /** Certificates to upload. */
  alice: IssuedCertificate;
  bob: IssuedCertificate;
}

export async function createServicePki(): Promise<ServicePki> {
  const ca = await createDevCa({ commonName: "certgate service test CA" });
  const server = await issueDevCertificate(ca, {
    commonName: "localhost",
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1"],
    usages: ["server"],
  });
  const [admin, reader, stranger, alice, bob] = await Promise.all(
    ["admin", "reader", "stranger", "alice", "bob"].map((commonName) =>
      issueDevCertificate(ca, { commonName, usages: ["client"] }),
    ),
  );
  return {
    ca,
    server,
    admin: admin as IssuedCertificate,
    reader: reader as IssuedCertificate,
    stranger: stranger as IssuedCertificate,
    alice: alice as IssuedCertificate,
    bob: bob as IssuedCertificate,
  };
}

export function sha256Of(certificate: IssuedCertificate): string {
  return parseCertificate(certificate.der).sha256;
}

export function sha1Of(certificate: IssuedCertificate): string {
  return parseCertificate(certificate.der).sha1;
}

/** A running service on 127.0.0.1, port 0. */
export interface RunningService {
  url: string;
  port: number;
  server: CertificateStoreServer;
  close(): Promise<void>;
}

/**
 * startService runs `createCertificateStoreServer` with the PKI's server
 * certificate, `admin` as admin and `reader` as reader, unless `options`
 * says otherwise.
 */
export async function startService(
  pki: ServicePki,
  store: WritableCertificateStore,
  options: Partial<CertificateStoreServerOptions> = {},
  port = 0,
): Promise<RunningService> {
  const server = createCertificateStoreServer({
    store,
    cert: pki.server.cert,
    key: pki.server.key,
    access: {
      admin: { thumbprints: [sha256Of(pki.admin)] },
      reader: { thumbprints: [sha1Of(pki.reader)] },
    },
    shutdownTimeoutMs: 200,
    ...options,
  });
  const address = await server.listen(port);
  return { url: address.url, port: address.port, server, close: () => server.close() };
}

export type StoreProtocol = "connect" | "grpc";

/** A connect-node transport to the service presenting `client` (or none). */
export function serviceTransport(
  service: { url: string },
  pki: ServicePki,
  client: IssuedCertificate | undefined,
  protocol: StoreProtocol = "connect",
): Transport {
  const nodeOptions = {
    ca: pki.ca.cert,
    ...(client === undefined ? {} : { cert: client.cert, key: client.key }),
  };
  return protocol === "grpc"
    ? createGrpcTransport({ baseUrl: service.url, nodeOptions })
    : createConnectTransport({ baseUrl: service.url, httpVersion: "2", nodeOptions });
}

export function storeClient(
  service: { url: string },
  pki: ServicePki,
  client: IssuedCertificate | undefined,
  protocol: StoreProtocol = "connect",
): Client<typeof CertificateStoreService> {
  return createClient(CertificateStoreService, serviceTransport(service, pki, client, protocol));
}

/**
 * readWatch reads a watch until `until` says stop (the event is kept), then
 * cancels the call.
 */
export async function readWatch(
  stream: AsyncIterable<WatchCertificatesResponse>,
  until: (event: WatchCertificatesResponse, seen: WatchCertificatesResponse[]) => boolean,
  abort: AbortController,
): Promise<WatchCertificatesResponse[]> {
  const seen: WatchCertificatesResponse[] = [];
  try {
    for await (const event of stream) {
      seen.push(event);
      if (until(event, seen)) {
        break;
      }
    }
  } finally {
    abort.abort();
  }
  return seen;
}

/** A @grpc/grpc-js client for any service, built from its descriptor. */
export interface GrpcJsClient {
  unary<I extends DescMessage, O extends DescMessage>(
    service: DescService,
    method: string,
    input: I,
    output: O,
    request: MessageShape<I>,
  ): Promise<MessageShape<O>>;
  /** Reads a server stream until `count` messages arrived, then cancels it. */
  serverStream<I extends DescMessage, O extends DescMessage>(
    service: DescService,
    method: string,
    input: I,
    output: O,
    request: MessageShape<I>,
    count: number,
  ): Promise<MessageShape<O>[]>;
  close(): void;
}

export function createGrpcJsClient(port: number, tls: { ca: string; cert?: string; key?: string }): GrpcJsClient {
  const credentials = grpc.credentials.createSsl(
    Buffer.from(tls.ca),
    tls.key === undefined ? null : Buffer.from(tls.key),
    tls.cert === undefined ? null : Buffer.from(tls.cert),
  );
  // The server certificate names localhost too; naming it avoids sending an
  // IP address as TLS server name (Node's DEP0123).
  const client = new grpc.Client(`127.0.0.1:${port}`, credentials, {
    "grpc.ssl_target_name_override": "localhost",
    "grpc.default_authority": "localhost",
  });
  const serialize = (schema: DescMessage) => (value: unknown) =>
    Buffer.from(toBinary(schema, value as MessageShape<DescMessage>));
  const deserialize = (schema: DescMessage) => (bytes: Buffer) => fromBinary(schema, bytes);
  return {
    unary(service, method, input, output, request) {
      return new Promise((resolve, reject) => {
        client.makeUnaryRequest(
          `/${service.typeName}/${method}`,
          serialize(input),
          deserialize(output),
          request,
          (error, response) => (error ? reject(error) : resolve(response as MessageShape<typeof output>)),
        );
      });
    },
    serverStream(service, method, input, output, request, count) {
      return new Promise((resolve, reject) => {
        const seen: MessageShape<typeof output>[] = [];
        const call = client.makeServerStreamRequest(
          `/${service.typeName}/${method}`,
          serialize(input),
          deserialize(output),
          request,
        );
        call.on("data", (message: MessageShape<typeof output>) => {
          seen.push(message);
          if (seen.length === count) {
            call.cancel();
            resolve(seen);
          }
        });
        call.on("error", (error: grpc.ServiceError) => {
          if (seen.length < count) reject(error);
        });
        call.on("end", () => resolve(seen));
      });
    },
    close() {
      client.close();
    },
  };
}

/** codeOf resolves to "ok" when the call succeeds, else to its Connect code. */
export async function codeOf(promise: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await promise;
    return "ok";
  } catch (error) {
    return ConnectError.from(error).code;
  }
}
