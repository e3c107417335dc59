import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Code, createClient } from "@connectrpc/connect";
import {
  createClientCertInterceptor,
  createClientCertTransport,
  createThumbprintStore,
  createTlsFiles,
  type ClientCertTransport,
} from "../../src/index.js";
import { issueDevCertificate, type IssuedCertificate } from "../../src/dev-certificates.js";
import { EchoService } from "../../src/gen/certgate/example/v1/echo_pb.js";
import {
  connectErrorOf,
  createTestPki,
  startEchoServer,
  waitFor,
  type TestPki,
  type TestServer,
} from "../support/harness.js";
import { atomicWrite, eventLog } from "../support/tls-rotation.js";

let tmp: string;
let pki: TestPki;
let v1: IssuedCertificate;
let v2: IssuedCertificate;
let unlisted: IssuedCertificate;
let server: TestServer;
const closers: (() => unknown)[] = [];
const sha256 = (issued: IssuedCertificate) => createHash("sha256").update(issued.der).digest("hex");

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "certgate-client-transport-"));
  pki = await createTestPki();
  v1 = await issueDevCertificate(pki.ca, { commonName: "service v1", usages: ["client"] });
  v2 = await issueDevCertificate(pki.ca, { commonName: "service v2", usages: ["client"] });
  unlisted = await issueDevCertificate(pki.ca, { commonName: "service v3", usages: ["client"] });
  server = await startEchoServer({
    pki,
    interceptors: [createClientCertInterceptor({ store: createThumbprintStore([sha256(v1), sha256(v2)]) })],
  });
});
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});
afterAll(async () => {
  await server.close();
  await rm(tmp, { recursive: true, force: true });
});

let n = 0;
async function setUp(httpVersion: "2" | "1.1", protocol: "connect" | "grpc") {
  const dir = join(tmp, `case-${++n}`);
  await atomicWrite(dir, { "tls.crt": v1.cert, "tls.key": v1.key, "ca.crt": pki.ca.cert });
  const log = eventLog();
  const transport: ClientCertTransport = createClientCertTransport({
    baseUrl: server.url,
    cert: join(dir, "tls.crt"),
    key: join(dir, "tls.key"),
    ca: join(dir, "ca.crt"),
    filesOptions: { debounceMs: 20, onEvent: log.onEvent },
    protocol,
    httpVersion,
  });
  closers.push(() => transport.close());
  const client = createClient(EchoService, transport);
  const rotate = async (to: IssuedCertificate) => {
    const reloaded = log.next("reloaded");
    await atomicWrite(dir, { "tls.crt": to.cert, "tls.key": to.key, "ca.crt": pki.ca.cert });
    await reloaded;
  };
  return { client, rotate, transport };
}

const lastSubject = () => server.log.clientCommonNames.at(-1);

describe("createClientCertTransport()", () => {
  it("over HTTP/2 (gRPC): a call in progress finishes on its connection; the next call presents the renewed certificate", async () => {
    const { client, rotate } = await setUp("2", "grpc");
    await client.echo({ text: "first" });
    expect(lastSubject()).toMatch(/service v1/);
    const connections = server.stats.connections;

    // A client stream open across the renewal.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    async function* parts() {
      yield { text: "a" };
      await released;
      yield { text: "b" };
    }
    const streaming = client.echoClientStream(parts());
    await waitFor(() => server.log.calls.length === 2, "the stream to reach the server");
    expect(lastSubject()).toMatch(/service v1/);

    await rotate(v2);
    await client.echo({ text: "after" });
    expect(lastSubject()).toMatch(/service v2/);
    expect(server.stats.connections).toBe(connections + 1);

    release();
    expect((await streaming).text).toBe("ab");
    // The replaced connection closes once its last call is done.
    const open = () => new Promise<number>((resolve) => server.server.getConnections((_e, count) => resolve(count)));
    await waitFor(async () => (await open()) === 1, "the old connection to close");
  });

  it("over HTTP/1.1 (Connect): the next connection presents the renewed certificate, and one the server does not admit is refused", async () => {
    const { client, rotate } = await setUp("1.1", "connect");
    await client.echo({ text: "first" });
    expect(lastSubject()).toMatch(/service v1/);
    await rotate(v2);
    await client.echo({ text: "second" });
    expect(lastSubject()).toMatch(/service v2/);
    await rotate(unlisted);
    expect((await connectErrorOf(client.echo({ text: "third" }))).code).toBe(Code.Unauthenticated);
  });

  it("takes files made with createTlsFiles, which close() leaves open", async () => {
    const dir = join(tmp, "given");
    await atomicWrite(dir, { "tls.crt": v1.cert, "tls.key": v1.key, "ca.crt": pki.ca.cert });
    const files = createTlsFiles({ cert: join(dir, "tls.crt"), key: join(dir, "tls.key"), ca: join(dir, "ca.crt") });
    closers.push(() => files.close());
    const transport = createClientCertTransport({ baseUrl: server.url, files });
    const client = createClient(EchoService, transport);
    await client.echo({ text: "x" });
    expect(lastSubject()).toMatch(/service v1/);
    transport.close();
    await expect(client.echo({ text: "y" })).rejects.toThrow(/closed/);
    expect(files.certificate.subject).toMatch(/service v1/);
  });

  it("refuses bad options at once", () => {
    expect(() => createClientCertTransport({ baseUrl: "http://x", cert: "c", key: "k" })).toThrow(/https:\/\/ URL/);
    expect(() =>
      createClientCertTransport({ baseUrl: "https://x", cert: "c", key: "k", protocol: "grpc", httpVersion: "1.1" }),
    ).toThrow(/needs httpVersion "2"/);
    expect(() => createClientCertTransport({ baseUrl: "https://x", cert: join(tmp, "none"), key: "k" })).toThrow(
      /cannot read .*none: ENOENT/,
    );
  });
});
