import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import * as http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { EchoRequestSchema, EchoService } from "../../src/gen/certgate/example/v1/echo_pb.js";
import { ClientCertificateErrorSchema } from "../../src/gen/certgate/v1/errors_pb.js";
import {
  createClientCertGate,
  createFastRefusalHandler,
  createThumbprintStore,
  type DecisionEvent,
} from "../../src/index.js";
import type { IssuedCertificate } from "../../src/dev-certificates.js";
import {
  certificateOf,
  createTestPki,
  echoPath,
  grpcFrame,
  startEchoServer,
  transportFor,
  waitFor,
  type TestPki,
  type TestServer,
} from "../support/harness.js";

// The fast refusal path answers a refused call on a known connection with
// Connect's own response, recorded from its first refusal: compared here
// field for field with a server without the fast path, and proven to skip
// the adapter (its handler never runs again) and the request body.

let pki: TestPki;
let plain: TestServer;
let fast: TestServer;
let goaway: TestServer;
const events: DecisionEvent[] = [];
const adapterCalls = { fast: 0, goaway: 0 };

beforeAll(async () => {
  pki = await createTestPki();
  const a = certificateOf(pki.alice);
  const pins = [a.sha1];
  plain = await startEchoServer({ pki, requestGate: createClientCertGate({ store: createThumbprintStore(pins) }) });
  const gate = createClientCertGate({ store: createThumbprintStore(pins), onDecision: (e) => events.push(e) });
  fast = await startEchoServer({
    pki,
    requestGate: gate,
    wrapHandler: (handler) =>
      createFastRefusalHandler(
        (req, res) => {
          adapterCalls.fast++;
          handler(req, res);
        },
        { gate },
      ),
  });
  const gate2 = createClientCertGate({ store: createThumbprintStore(pins) });
  goaway = await startEchoServer({
    pki,
    requestGate: gate2,
    wrapHandler: (handler) =>
      createFastRefusalHandler(
        (req, res) => {
          adapterCalls.goaway++;
          handler(req, res);
        },
        { gate: gate2, maxRefusedCallsPerConnection: 5 },
      ),
  });
});
afterAll(async () => {
  await Promise.all([plain?.close(), fast?.close(), goaway?.close()]);
});

interface Wire {
  status: number;
  headers: Record<string, unknown>;
  body: Buffer;
  trailers: Record<string, unknown>;
  rstCode: number | undefined;
}

interface Session {
  request(headers: http2.OutgoingHttpHeaders, body: Uint8Array | string | undefined, end?: boolean): Promise<Wire>;
  readonly session: http2.ClientHttp2Session;
  close(): Promise<void>;
}

// One persistent HTTP/2 connection presenting `client` (or no certificate).
function openSession(server: TestServer, client: IssuedCertificate | undefined): Session {
  const tls = client === undefined ? { ca: pki.ca.cert } : { ca: pki.ca.cert, cert: client.cert, key: client.key };
  const session = http2.connect(server.url, tls);
  session.on("error", () => {});
  return {
    session,
    request(headers, body, end = true) {
      return new Promise<Wire>((resolve, reject) => {
        const stream = session.request(
          { ":method": "POST", ":path": echoPath, ...headers },
          { endStream: body === undefined && end },
        );
        const chunks: Buffer[] = [];
        let response: http2.IncomingHttpHeaders = {};
        let trailers: http2.IncomingHttpHeaders = {};
        stream.on("response", (h) => (response = h));
        stream.on("trailers", (t) => (trailers = t));
        stream.on("data", (c: Buffer) => chunks.push(c));
        stream.on("error", reject);
        stream.on("close", () =>
          resolve({
            status: Number(response[":status"]),
            headers: withoutDate(response),
            body: Buffer.concat(chunks),
            trailers: { ...trailers },
            rstCode: stream.rstCode,
          }),
        );
        if (body !== undefined) {
          if (end) stream.end(body);
          else stream.write(body);
        }
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        if (session.destroyed) return resolve();
        session.once("close", () => resolve());
        session.close();
      }),
  };
}

function withoutDate(headers: http2.IncomingHttpHeaders): Record<string, unknown> {
  const { date, ...rest } = headers;
  expect(typeof date).toBe("string");
  return { ...rest };
}

function envelope(message: Uint8Array, flags = 0): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame[0] = flags;
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

const echoProto = toBinary(EchoRequestSchema, create(EchoRequestSchema, { text: "hi" }));
const serverStreamPath = "/certgate.example.v1.EchoService/EchoServerStream";

// Request shapes: each protocol and format, with and without compression offered.
const shapes: [string, http2.OutgoingHttpHeaders, Uint8Array | string][] = [
  ["Connect unary JSON", { "content-type": "application/json", "connect-protocol-version": "1" }, '{"text":"hi"}'],
  ["Connect unary proto", { "content-type": "application/proto", "connect-protocol-version": "1" }, echoProto],
  [
    "Connect unary proto, gzip offered",
    { "content-type": "application/proto", "connect-protocol-version": "1", "accept-encoding": "gzip, br" },
    echoProto,
  ],
  [
    "Connect server streaming proto",
    { ":path": serverStreamPath, "content-type": "application/connect+proto", "connect-protocol-version": "1" },
    envelope(echoProto),
  ],
  [
    "Connect server streaming JSON, gzip offered",
    {
      ":path": serverStreamPath,
      "content-type": "application/connect+json",
      "connect-protocol-version": "1",
      "connect-accept-encoding": "gzip",
    },
    envelope(Buffer.from('{"text":"hi"}')),
  ],
  ["gRPC", { "content-type": "application/grpc", te: "trailers" }, grpcFrame("hi")],
  [
    "gRPC, gzip offered",
    { "content-type": "application/grpc+proto", te: "trailers", "grpc-accept-encoding": "gzip" },
    grpcFrame("hi"),
  ],
  [
    "gRPC server streaming",
    { ":path": serverStreamPath, "content-type": "application/grpc", te: "trailers" },
    grpcFrame("hi"),
  ],
  ["gRPC-Web", { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" }, grpcFrame("hi")],
];

const clients: [string, () => IssuedCertificate | undefined][] = [
  ["no certificate", () => undefined],
  ["a certificate not allowed", () => pki.bob],
];

describe("createFastRefusalHandler()", () => {
  for (const [who, client] of clients) {
    for (const [shape, headers, body] of shapes) {
      it(`refuses ${who} over ${shape} exactly as Connect does, without the adapter after the first refusals`, async () => {
        const reference = openSession(plain, client());
        const session = openSession(fast, client());
        try {
          const expected = await reference.request(headers, body);
          expect([200, 401]).toContain(expected.status);
          // The first calls teach the path and record Connect's refusal.
          for (let i = 0; i < 2; i++) {
            expect(await session.request(headers, body)).toEqual(expected);
          }
          const before = adapterCalls.fast;
          for (let i = 0; i < 3; i++) {
            expect(await session.request(headers, body)).toEqual(expected);
          }
          expect(adapterCalls.fast).toBe(before);
        } finally {
          await Promise.all([reference.close(), session.close()]);
        }
      });
    }
  }

  it("admits alice on the same server, through the adapter, on every call", async () => {
    const session = openSession(fast, pki.alice);
    try {
      for (let i = 0; i < 4; i++) {
        const before = adapterCalls.fast;
        const res = await session.request({ "content-type": "application/json" }, '{"text":"hi"}');
        expect(res.status).toBe(200);
        expect(JSON.parse(res.body.toString())).toEqual({ text: "hi" });
        expect(adapterCalls.fast).toBe(before + 1);
      }
    } finally {
      await session.close();
    }
  });

  it("refuses without reading the body: an upload that never ends is answered and reset with NO_ERROR", async () => {
    const headers = { "content-type": "application/proto" };
    const session = openSession(fast, pki.bob);
    try {
      for (let i = 0; i < 2; i++) await session.request(headers, echoProto);
      const before = adapterCalls.fast;
      const handled = fast.log.calls.length;
      const res = await session.request(headers, Buffer.alloc(32 * 1024), false);
      expect(res.status).toBe(401);
      expect(JSON.parse(res.body.toString())).toMatchObject({ code: "unauthenticated" });
      expect(res.rstCode).toBe(http2.constants.NGHTTP2_NO_ERROR);
      expect(adapterCalls.fast).toBe(before);
      expect(fast.log.calls.length).toBe(handled);
    } finally {
      await session.close();
    }
  });

  it("reports every refused call to onDecision, fast or not", async () => {
    const session = openSession(fast, pki.bob);
    const headers = { "content-type": "application/json" };
    try {
      const before = events.length;
      for (let i = 0; i < 6; i++) await session.request(headers, "{}");
      const seen = events.slice(before);
      expect(seen).toHaveLength(6);
      for (const e of seen) {
        expect(e).toMatchObject({ kind: "refused", reason: "not_allowed", procedure: echoPath, via: "gate" });
      }
    } finally {
      await session.close();
    }
  });

  for (const protocol of ["connect", "grpc", "grpc-web"] as const) {
    it(`gives connect-node's ${protocol} client the same ConnectError as Connect, with the ClientCertificateError detail`, async () => {
      const errors: ConnectError[] = [];
      for (const server of [plain, fast]) {
        const client = createClient(EchoService, transportFor(server, pki, pki.bob, protocol));
        for (let i = 0; i < 4; i++) {
          const error = await client.echo({ text: "hi" }).then(
            () => undefined,
            (e: unknown) => ConnectError.from(e),
          );
          expect(error).toBeDefined();
          errors.push(error as ConnectError);
        }
      }
      for (const e of errors) {
        expect(e.code).toBe(Code.Unauthenticated);
        expect(e.rawMessage).toBe(errors[0]?.rawMessage);
        const [detail] = e.findDetails(ClientCertificateErrorSchema);
        expect(detail).toMatchObject({ reason: "not_allowed", procedure: echoPath });
      }
    });
  }

  it("leaves HTTP/1.1 to Connect: the same refusal, through the adapter every time", async () => {
    const client = createClient(EchoService, transportFor(fast, pki, pki.bob, "connect", "1.1"));
    for (let i = 0; i < 3; i++) {
      const before = adapterCalls.fast;
      const error = await client.echo({ text: "hi" }).then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
      expect(error?.code).toBe(Code.Unauthenticated);
      expect(error?.findDetails(ClientCertificateErrorSchema)[0]).toMatchObject({ reason: "not_allowed" });
      expect(adapterCalls.fast).toBe(before + 1);
    }
  });

  it("leaves unknown paths to Connect: a refused client still gets its 404", async () => {
    const session = openSession(fast, pki.bob);
    try {
      for (let i = 0; i < 3; i++) {
        const before = adapterCalls.fast;
        const res = await session.request(
          { ":path": "/no.such.v1.Service/Method", "content-type": "application/json" },
          "{}",
        );
        expect(res.status).toBe(404);
        expect(adapterCalls.fast).toBe(before + 1);
      }
    } finally {
      await session.close();
    }
  });

  describe("with curl and buf curl (a new connection per call)", () => {
    const run = promisify(execFile);
    let files: string;
    beforeAll(async () => {
      files = await mkdtemp(join(tmpdir(), "certgate-fast-refusal-"));
      await writeFile(join(files, "ca.pem"), pki.ca.cert);
      await writeFile(join(files, "bob.pem"), pki.bob.cert);
      await writeFile(join(files, "bob.key"), pki.bob.key);
    });
    afterAll(async () => {
      if (files !== undefined) await rm(files, { recursive: true, force: true });
    });
    const tls = (client: "bob" | undefined) =>
      client === undefined ? [] : ["--cert", join(files, "bob.pem"), "--key", join(files, "bob.key")];

    for (const client of ["bob", undefined] as const) {
      it(`gives curl the same refusal as Connect (${client ?? "no certificate"})`, async () => {
        const curl = async (server: TestServer) => {
          const { stdout } = await run("curl", [
            "-s",
            "--http2",
            "--cacert",
            join(files, "ca.pem"),
            ...tls(client),
            "-H",
            "content-type: application/json",
            "-d",
            '{"text":"hi"}',
            "-D",
            "-",
            `https://127.0.0.1:${server.port}${echoPath}`,
          ]);
          return stdout.replace(/^date: .*\r\n/im, "");
        };
        const expected = await curl(plain);
        expect(expected).toMatch(/^HTTP\/2 401/);
        for (let i = 0; i < 3; i++) expect(await curl(fast)).toBe(expected);
      });

      it(`gives buf curl --protocol grpc the same refusal as Connect (${client ?? "no certificate"})`, async () => {
        const buf = join(process.cwd(), "node_modules", ".bin", "buf");
        const bufCurl = async (server: TestServer) => {
          const result = await run(buf, [
            "curl",
            "--protocol",
            "grpc",
            "--schema",
            "proto",
            "--cacert",
            join(files, "ca.pem"),
            ...tls(client),
            "-d",
            '{"text":"hi"}',
            `https://127.0.0.1:${server.port}${echoPath}`,
          ]).then(
            () => ({ ok: true, stderr: "" }),
            (e: { stderr?: string }) => ({ ok: false, stderr: String(e.stderr) }),
          );
          return result;
        };
        const expected = await bufCurl(plain);
        expect(expected.ok).toBe(false);
        expect(JSON.parse(expected.stderr)).toMatchObject({ code: "unauthenticated" });
        for (let i = 0; i < 3; i++) expect(await bufCurl(fast)).toEqual(expected);
      });
    }
  });

  it("closes a connection with GOAWAY after maxRefusedCallsPerConnection refused calls, and serves a new one", async () => {
    const session = openSession(goaway, pki.bob);
    let goaways = 0;
    session.session.on("goaway", () => goaways++);
    try {
      for (let i = 0; i < 5; i++) {
        expect((await session.request({ "content-type": "application/json" }, "{}")).status).toBe(401);
      }
      await waitFor(() => goaways === 1 && session.session.closed, "GOAWAY");
    } finally {
      await session.close();
    }
    const next = openSession(goaway, pki.bob);
    try {
      expect((await next.request({ "content-type": "application/json" }, "{}")).status).toBe(401);
    } finally {
      await next.close();
    }
  });

  it("keeps an admitted connection open, however many calls it makes", async () => {
    const session = openSession(goaway, pki.alice);
    let goaways = 0;
    session.session.on("goaway", () => goaways++);
    try {
      for (let i = 0; i < 12; i++) {
        expect((await session.request({ "content-type": "application/json" }, '{"text":"x"}')).status).toBe(200);
      }
      expect(goaways).toBe(0);
      expect(session.session.closed).toBe(false);
    } finally {
      await session.close();
    }
  });

  it("fails at start-up without the adapter's gate, or with a bad bound", () => {
    const handler = () => {};
    expect(() => createFastRefusalHandler(handler, { gate: () => {} })).toThrow(/options\.gate/);
    const gate = createClientCertGate({ store: createThumbprintStore(certificateOf(pki.alice).sha1) });
    expect(() => createFastRefusalHandler(handler, { gate, maxRefusedCallsPerConnection: 0 })).toThrow(
      /maxRefusedCallsPerConnection/,
    );
    expect(() => createFastRefusalHandler(handler, { gate, maxRefusedCallsPerConnection: Infinity })).not.toThrow();
  });
});
