import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  createClientCertChannelCredentials,
  createClientCertServerInterceptor,
  createServerCredentials,
  createThumbprintStore,
  createTlsFiles,
} from "../../src/grpc-js/index.js";
import { createDevCa, issueDevCertificate, type IssuedCertificate } from "../../src/dev-certificates.js";
import { EchoService } from "../../src/gen/certgate/example/v1/echo_pb.js";
import { createTestPki, waitFor, type TestPki } from "../support/harness.js";
import {
  createBidiClient,
  echoDefinition,
  startGrpcJsEchoServer,
  type EchoBidiRawClient,
} from "../support/grpc-js-echo-server.js";
import { atomicWrite, eventLog, presentedCertificate, serialOf } from "../support/tls-rotation.js";

let tmp: string;
let pki: TestPki;
const closers: (() => unknown)[] = [];
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "certgate-grpc-tls-"));
  pki = await createTestPki();
});
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

function follow(dir: string, ca?: boolean) {
  const log = eventLog();
  const files = createTlsFiles({
    cert: join(dir, "tls.crt"),
    key: join(dir, "tls.key"),
    ...(ca === true ? { ca: join(dir, "ca.crt") } : {}),
    debounceMs: 20,
    onEvent: log.onEvent,
  });
  closers.push(() => files.close());
  return { files, log };
}

const sha256 = (issued: IssuedCertificate) => createHash("sha256").update(issued.der).digest("hex");

describe("createServerCredentials({ files })", () => {
  it("gives new connections the rotated certificate while an open bidi stream keeps working", async () => {
    const dir = join(tmp, "server");
    const next = await issueDevCertificate(pki.ca, {
      commonName: "localhost (renewed)",
      dnsNames: ["localhost"],
      ipAddresses: ["127.0.0.1"],
      usages: ["server"],
    });
    await atomicWrite(dir, { "tls.crt": pki.server.cert, "tls.key": pki.server.key });
    const { files, log } = follow(dir);
    const server = await startGrpcJsEchoServer({
      pki,
      interceptors: [],
      credentials: createServerCredentials({ files }),
    });
    closers.push(() => server.close());
    const client = createBidiClient(server.port, { ca: pki.ca.cert, cert: pki.alice.cert, key: pki.alice.key });
    closers.push(() => client.close());
    const call = client.echoBidi();
    closers.push(() => call.cancel());
    const replies: string[] = [];
    call.on("data", (m: { text: string }) => replies.push(m.text));
    call.on("error", () => {});
    call.write({ text: "one" });
    await waitFor(() => replies.length === 1, "the first reply");
    expect((await presentedCertificate(server.port)).serialNumber).toBe(serialOf(pki.server));

    const reloaded = log.next("reloaded");
    await atomicWrite(dir, { "tls.crt": next.cert, "tls.key": next.key });
    await reloaded;
    expect((await presentedCertificate(server.port)).serialNumber).toBe(serialOf(next));
    call.write({ text: "two" });
    await waitFor(() => replies.length === 2, "the reply after the rotation");
    expect(replies[1]).toMatch(/^two /);
  });
});

describe("createClientCertChannelCredentials()", () => {
  it("presents a renewed client certificate on new connections; an open one keeps its own", async () => {
    const dir = join(tmp, "client");
    const first = await issueDevCertificate(pki.ca, { commonName: "service v1", usages: ["client"] });
    const renewed = await issueDevCertificate(pki.ca, { commonName: "service v2", usages: ["client"] });
    const stranger = await issueDevCertificate(await createDevCa({ commonName: "other" }), {
      commonName: "service v3",
      usages: ["client"],
    });
    await atomicWrite(dir, { "tls.crt": first.cert, "tls.key": first.key, "ca.crt": pki.ca.cert });
    const { files, log } = follow(dir, true);
    const server = await startGrpcJsEchoServer({
      pki,
      interceptors: [
        createClientCertServerInterceptor({ store: createThumbprintStore([sha256(first), sha256(renewed)]) }),
      ],
    });
    closers.push(() => server.close());
    const credentials = createClientCertChannelCredentials(files);
    // Each client its own channel and connection (no shared subchannel pool).
    const newClient = () => {
      const Constructor = grpc.makeGenericClientConstructor(echoDefinition(), EchoService.typeName);
      const client = new Constructor(`127.0.0.1:${server.port}`, credentials, {
        "grpc.use_local_subchannel_pool": 1,
      }) as unknown as EchoBidiRawClient;
      closers.push(() => client.close());
      return client;
    };
    const echo = (client: EchoBidiRawClient, text: string) =>
      new Promise<string>((resolve, reject) =>
        client.echo({ text }, new grpc.Metadata(), (error, response) =>
          error === null ? resolve(response?.text ?? "") : reject(error),
        ),
      );

    const running = newClient();
    expect(await echo(running, "a")).toMatch(/service v1/);

    const reloaded = log.next("reloaded");
    await atomicWrite(dir, { "tls.crt": renewed.cert, "tls.key": renewed.key, "ca.crt": pki.ca.cert });
    await reloaded;
    // The open connection keeps the certificate it was made with.
    expect(await echo(running, "b")).toMatch(/service v1/);
    // A new connection presents the renewed one.
    expect(await echo(newClient(), "c")).toMatch(/service v2/);

    // A certificate the server does not admit is presented, and refused, just the same.
    const replaced = log.next("reloaded");
    await atomicWrite(dir, { "tls.crt": stranger.cert, "tls.key": stranger.key, "ca.crt": pki.ca.cert });
    await replaced;
    await expect(echo(newClient(), "d")).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
  });
});
