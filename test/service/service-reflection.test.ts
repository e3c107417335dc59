import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fromBinary, type DescService, type MessageInitShape } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, createClient } from "@connectrpc/connect";
import { createWritableIterable } from "@connectrpc/connect/protocol";
import { connectNodeAdapter, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EchoService } from "../../src/gen/certgate/example/v1/echo_pb.js";
import { Health } from "../../src/gen/grpc/health/v1/health_pb.js";
import * as v1 from "../../src/gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../src/gen/grpc/reflection/v1alpha/reflection_pb.js";
import type { IssuedCertificate } from "../../src/dev-certificates.js";
import { createReflectionService } from "../../src/service/reflection.js";
import { createMemoryStore } from "../../src/stores/memory-store.js";
import type { WritableCertificateStore } from "../../src/core/store.js";
import { connectErrorOf } from "../support/harness.js";
import {
  createServicePki,
  serviceTransport,
  sha256Of,
  startService,
  type RunningService,
  type ServicePki,
} from "../support/service-harness.js";

const buf = join(process.cwd(), "node_modules", ".bin", "buf");
const storeMethods = [
  "CreateCertificate",
  "CreateCertificates",
  "GetCertificate",
  "ListCertificates",
  "DeleteCertificate",
  "VerifyCertificate",
  "WatchCertificates",
  "ListAuditEvents",
].map((m) => `certgate.v1.CertificateStoreService/${m}`);

interface BufResult {
  code: number;
  stdout: string;
  stderr: string;
}

function bufCurl(args: readonly string[]): Promise<BufResult> {
  return new Promise((resolve) => {
    execFile(buf, ["curl", ...args], { timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

let pki: ServicePki;
let tmp: string;
let store: WritableCertificateStore;
let service: RunningService;
const files: Record<string, string> = {};

beforeAll(async () => {
  pki = await createServicePki();
  tmp = await mkdtemp(join(tmpdir(), "certgate-reflection-"));
  for (const [name, issued] of Object.entries({ admin: pki.admin, reader: pki.reader, stranger: pki.stranger })) {
    files[`${name}.pem`] = join(tmp, `${name}.pem`);
    files[`${name}-key.pem`] = join(tmp, `${name}-key.pem`);
    await writeFile(files[`${name}.pem`]!, issued.cert);
    await writeFile(files[`${name}-key.pem`]!, issued.key);
  }
  files["ca.pem"] = join(tmp, "ca.pem");
  await writeFile(files["ca.pem"], pki.ca.cert);
  store = createMemoryStore({ certificates: [pki.alice.cert] });
  service = await startService(pki, store);
});

afterAll(async () => {
  await service?.close();
  await store?.close();
  await rm(tmp, { recursive: true, force: true });
});

function tlsFlags(client: "admin" | "reader" | "stranger" | undefined): string[] {
  const identity =
    client === undefined ? [] : ["--cert", files[`${client}.pem`]!, "--key", files[`${client}-key.pem`]!];
  return ["--cacert", files["ca.pem"]!, ...identity];
}

describe("createCertificateStoreServer() reflection with buf curl", () => {
  it("lists the eight store methods to a reader, over v1 and v1alpha", async () => {
    for (const protocol of ["grpc-v1", "grpc-v1alpha"]) {
      const result = await bufCurl([
        "--reflect",
        "--reflect-protocol",
        protocol,
        "--list-methods",
        ...tlsFlags("reader"),
        service.url,
      ]);
      expect(result.code, result.stderr).toBe(0);
      const methods = result.stdout.trim().split("\n");
      for (const method of storeMethods) expect(methods, protocol).toContain(method);
      expect(
        methods.filter((m) => m.startsWith("certgate.v1.")),
        protocol,
      ).toHaveLength(storeMethods.length);
      expect(methods).toContain("grpc.health.v1.Health/Check");
    }
  });

  it("calls ListCertificates through reflection, as an admin and as a reader", async () => {
    for (const client of ["admin", "reader"] as const) {
      for (const protocol of ["grpc-v1", "grpc-v1alpha"]) {
        const result = await bufCurl([
          "--reflect",
          "--reflect-protocol",
          protocol,
          ...tlsFlags(client),
          "-d",
          '{"pageSize": 10}',
          `${service.url}/certgate.v1.CertificateStoreService/ListCertificates`,
        ]);
        expect(result.code, result.stderr).toBe(0);
        const body = JSON.parse(result.stdout) as { certificates: { subject: string; notAfter: string }[] };
        expect(body.certificates.map((c) => c.subject)).toEqual(["CN=alice"]);
        expect(body.certificates[0]?.notAfter).toMatch(/^\d{4}-\d\d-\d\dT/);
      }
    }
  });

  it("refuses reflection without a certificate and with an unknown one (Unauthenticated)", async () => {
    for (const client of [undefined, "stranger"] as const) {
      for (const protocol of ["grpc-v1", "grpc-v1alpha"]) {
        const result = await bufCurl([
          "--reflect",
          "--reflect-protocol",
          protocol,
          "--list-methods",
          ...tlsFlags(client),
          service.url,
        ]);
        expect(result.code, `${client} ${protocol}`).not.toBe(0);
        expect(result.stdout).toBe("");
        // buf curl words Unauthenticated as "you are not authenticated".
        expect(result.stderr, result.stderr).toMatch(/not authenticated/);
      }
    }
  });

  it("is not served with reflection: false", async () => {
    const plain = await startService(pki, store, { reflection: false });
    try {
      const client = createClient(v1.ServerReflection, serviceTransport(plain, pki, pki.reader, "grpc"));
      const error = await connectErrorOf(
        collect(client.serverReflectionInfo(requests([{ case: "listServices", value: "" }]))),
      );
      expect(error.code).toBe(Code.Unimplemented);
    } finally {
      await plain.close();
    }
  });
});

async function* requests(questions: v1.ServerReflectionRequest["messageRequest"][]) {
  for (const messageRequest of questions) yield { host: "", messageRequest };
}

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of stream) out.push(item);
  return out;
}

function fileNames(response: { messageResponse: { case?: string; value?: unknown } }): string[] {
  if (response.messageResponse.case !== "fileDescriptorResponse") {
    throw new Error(`expected files, got ${String(response.messageResponse.case)}`);
  }
  const value = response.messageResponse.value as v1.FileDescriptorResponse;
  return value.fileDescriptorProto.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes).name);
}

describe("createReflectionService()", () => {
  // No default parameter: an explicit undefined (no certificate) must stay so.
  function reflectionClient(client: IssuedCertificate | undefined) {
    return createClient(v1.ServerReflection, serviceTransport(service, pki, client, "grpc"));
  }

  it("answers each request in order: services, files by name and by symbol, each import sent once per stream", async () => {
    const answers = await collect(
      reflectionClient(pki.reader).serverReflectionInfo(
        requests([
          { case: "listServices", value: "*" },
          { case: "fileContainingSymbol", value: "certgate.v1.CertificateStoreService.ListCertificates" },
          { case: "fileByFilename", value: "certgate/v1/certificate_store.proto" },
          { case: "fileContainingSymbol", value: "grpc.health.v1.HealthCheckResponse.ServingStatus" },
          { case: "fileContainingSymbol", value: "grpc.health.v1.HealthCheckResponse.SERVING" },
          { case: "fileContainingSymbol", value: "certgate.v1.Certificate.not_after" },
        ]),
      ),
    );
    expect(answers).toHaveLength(6);
    const [list, bySymbol, byName, nested, enumValue, field] = answers;
    expect(
      list?.messageResponse.case === "listServicesResponse" && list.messageResponse.value.service.map((s) => s.name),
    ).toEqual([
      "certgate.v1.CertificateStoreService",
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection",
    ]);
    expect(list?.originalRequest?.messageRequest).toEqual({ case: "listServices", value: "*" });
    // The file and its import; then the file alone: the import was sent.
    expect(fileNames(bySymbol!)).toEqual(["certgate/v1/certificate_store.proto", "google/protobuf/timestamp.proto"]);
    expect(fileNames(byName!)).toEqual(["certgate/v1/certificate_store.proto"]);
    expect(fileNames(nested!)).toEqual(["grpc/health/v1/health.proto"]);
    expect(fileNames(enumValue!)).toEqual(["grpc/health/v1/health.proto"]);
    expect(fileNames(field!)).toEqual(["certgate/v1/certificate_store.proto"]);
  });

  it("answers NOT_FOUND for unknown files, symbols and members, and keeps the stream open", async () => {
    const answers = await collect(
      reflectionClient(pki.reader).serverReflectionInfo(
        requests([
          { case: "fileByFilename", value: "../../etc/passwd" },
          { case: "fileContainingSymbol", value: "certgate.v1.Certificate.no_such_field" },
          { case: "fileContainingSymbol", value: "certgate.v1.CertificateStoreService.Nope" },
          { case: "allExtensionNumbersOfType", value: "certgate.v1.Nope" },
          { case: undefined },
          { case: "listServices", value: "" },
        ]),
      ),
    );
    const codes = answers.map((a) =>
      a.messageResponse.case === "errorResponse" ? a.messageResponse.value.errorCode : "answer",
    );
    expect(codes).toEqual([Code.NotFound, Code.NotFound, Code.NotFound, Code.NotFound, Code.InvalidArgument, "answer"]);
  });

  it("serves v1alpha with the same answers", async () => {
    const client = createClient(v1alpha.ServerReflection, serviceTransport(service, pki, pki.admin, "grpc"));
    const [answer] = await collect(
      client.serverReflectionInfo(
        (async function* () {
          yield {
            messageRequest: { case: "fileContainingSymbol" as const, value: "certgate.v1.CertificateStoreService" },
          };
        })(),
      ),
    );
    expect(answer?.$typeName).toBe("grpc.reflection.v1alpha.ServerReflectionResponse");
    expect(fileNames(answer!)).toEqual(["certgate/v1/certificate_store.proto", "google/protobuf/timestamp.proto"]);
  });

  it("refuses a request message larger than maxRequestBytes (ResourceExhausted)", async () => {
    const error = await connectErrorOf(
      collect(
        reflectionClient(pki.reader).serverReflectionInfo(
          requests([{ case: "fileByFilename", value: "x".repeat(5000) }]),
        ),
      ),
    );
    expect(error.code).toBe(Code.ResourceExhausted);
  });

  it("refuses clients the store refuses, before reading a request", async () => {
    for (const client of [undefined, pki.stranger]) {
      const error = await connectErrorOf(
        collect(reflectionClient(client).serverReflectionInfo(requests([{ case: "listServices", value: "" }]))),
      );
      expect(error.code).toBe(Code.Unauthenticated);
    }
  });

  it("ends a stream once its reader is removed from the reader list, and keeps it open while it is on it", async () => {
    const readers = createMemoryStore({ certificates: [pki.reader.cert] });
    const ownStore = createMemoryStore();
    const own = await startService(pki, ownStore, {
      access: { admin: { thumbprints: [sha256Of(pki.admin)] }, reader: { stores: [readers] } },
    });
    try {
      // Requests sent one by one, each after the previous answer arrived.
      const input = createWritableIterable<MessageInitShape<typeof v1.ServerReflectionRequestSchema>>();
      const send = () => void input.write({ messageRequest: { case: "listServices", value: "" } });
      const client = createClient(v1.ServerReflection, serviceTransport(own, pki, pki.reader, "grpc"));
      const stream = client.serverReflectionInfo(input)[Symbol.asyncIterator]();
      send();
      expect((await stream.next()).value?.messageResponse.case).toBe("listServicesResponse");
      send();
      expect((await stream.next()).value?.messageResponse.case).toBe("listServicesResponse");
      await readers.delete(sha256Of(pki.reader));
      send();
      const error = await connectErrorOf(stream.next());
      expect(error.code).toBe(Code.Unauthenticated);
      input.close();
    } finally {
      await own.close();
      await ownStore.close();
      await readers.close();
    }
  });

  it("describes any Connect server: an echo service over h2c with buf curl", async () => {
    const reflection = createReflectionService({ services: [EchoService] });
    const server = http2.createServer(
      connectNodeAdapter({
        routes(router) {
          router.service(EchoService, { echo: (req) => ({ text: req.text }) });
          reflection.routes(router);
        },
      }),
    );
    const sessions = new Set<http2.ServerHttp2Session>();
    server.on("session", (session) => {
      sessions.add(session);
      session.on("close", () => sessions.delete(session));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const listed = await bufCurl(["--http2-prior-knowledge", "--reflect", "--list-methods", url]);
      expect(listed.code, listed.stderr).toBe(0);
      expect(listed.stdout).toContain("certgate.example.v1.EchoService/Echo\n");
      expect(listed.stdout).not.toContain("CertificateStoreService");
      const called = await bufCurl([
        "--http2-prior-knowledge",
        "--reflect",
        "-d",
        '{"text":"hi"}',
        `${url}/certgate.example.v1.EchoService/Echo`,
      ]);
      expect(called.code, called.stderr).toBe(0);
      expect(JSON.parse(called.stdout)).toEqual({ text: "hi" });
      // A grpc transport over h2c, to check the same answers without buf.
      const client = createClient(v1.ServerReflection, createGrpcTransport({ baseUrl: url }));
      const [files] = await collect(
        client.serverReflectionInfo(
          requests([{ case: "fileContainingSymbol", value: "certgate.example.v1.EchoService.Echo" }]),
        ),
      );
      expect(fileNames(files!)).toEqual(["certgate/example/v1/echo.proto"]);
    } finally {
      const closed = new Promise((resolve) => server.close(resolve));
      for (const session of sessions) session.destroy();
      await closed;
    }
  });

  it("throws at creation without services", () => {
    expect(() => createReflectionService({ services: [] })).toThrow(/at least one service/);
    expect(() => createReflectionService({ services: [{} as DescService] })).toThrow(/at least one service/);
    expect(() => createReflectionService({ services: [Health], maxRequestBytes: 0 })).toThrow(/maxRequestBytes/);
  });
});
