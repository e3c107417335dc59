// The fast refusal path as users get it by default: guardRequestHandler's
// `gate` option, the demo and `certgate serve` as real processes. A refused
// client's calls on one connection get the same answer every time (the
// first through Connect, the rest replayed) and a GOAWAY after the bound;
// admitted calls and open health checks are untouched.
import * as http2 from "node:http2";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import {
  createClientCertGate,
  createThumbprintStore,
  guardRequestHandler,
  parseCertificate,
  peerCertificateContextValues,
  type DecisionEvent,
} from "../../src/index.js";
import { createCliFixture, killAll, startServe, type CliFixture, type Serve } from "../support/cli-harness.js";
import { createTestPki, echoPath, echoRoutes, waitFor, type TestPki } from "../support/harness.js";
import { printedPort, startExample, type ExampleProcess } from "../support/example-process.js";
import { openPersistentSession, type PersistentSession, type WireCall } from "../support/persistent-session.js";
import { h2Call } from "../support/raw-requests.js";

const bound = 100;

// `count` calls on one connection: all answered like the first, and a GOAWAY
// once the bound of refused calls is reached, not before.
async function expectSameRefusalThenGoaway(
  session: PersistentSession,
  count: number,
  call: () => Promise<WireCall>,
  status: number,
  body: RegExp,
): Promise<WireCall> {
  const first = await call();
  expect(first.status).toBe(status);
  expect(first.body).toMatch(body);
  for (let i = 2; i <= count; i++) {
    // The bound-th call is still answered on this connection: no GOAWAY before it.
    expect(await call()).toEqual(first);
  }
  await waitFor(() => session.goaways() === 1, "GOAWAY after the bound of refused calls");
  return first;
}

async function expectAdmittedThroughout(
  session: PersistentSession,
  count: number,
  call: () => Promise<WireCall>,
  body: RegExp,
) {
  for (let i = 0; i < count; i++) {
    const answer = await call();
    expect(answer.status).toBe(200);
    expect(answer.body).toMatch(body);
  }
  expect(session.goaways()).toBe(0);
  expect(session.session.closed).toBe(false);
}

describe("guardRequestHandler({ gate })", () => {
  let pki: TestPki;
  let server: http2.Http2SecureServer;
  let url: string;
  let port: number;
  const events: DecisionEvent[] = [];
  beforeAll(async () => {
    pki = await createTestPki();
    const gate = createClientCertGate({
      store: createThumbprintStore(parseCertificate(pki.alice.cert).sha256),
      onDecision: (e) => events.push(e),
    });
    server = http2.createSecureServer(
      { cert: pki.server.cert, key: pki.server.key, requestCert: true, rejectUnauthorized: false, allowHTTP1: true },
      guardRequestHandler(
        connectNodeAdapter({
          routes: echoRoutes({ calls: [], clientCommonNames: [] }),
          requestGate: gate,
          contextValues: peerCertificateContextValues,
        }),
        { gate, maxRefusedCallsPerConnection: 5 },
      ),
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
    url = `https://localhost:${port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it("refuses bob on one connection with Connect's answer every time, reports each call, and sends GOAWAY after the bound", async () => {
    const session = openPersistentSession(url, { ca: pki.ca.cert, cert: pki.bob.cert, key: pki.bob.key });
    const before = events.length;
    try {
      await expectSameRefusalThenGoaway(session, 5, () => session.call(echoPath), 401, /"code":"unauthenticated"/);
      expect(events.slice(before).map((e) => e.reason)).toEqual(Array(5).fill("not_allowed"));
    } finally {
      await session.close();
    }
  });

  it("admits alice on every call of one connection, without GOAWAY", async () => {
    const session = openPersistentSession(url, { ca: pki.ca.cert, cert: pki.alice.cert, key: pki.alice.key });
    try {
      await expectAdmittedThroughout(
        session,
        12,
        () => session.call(echoPath, undefined, '{"text":"hi"}'),
        /"text":"hi/,
      );
    } finally {
      await session.close();
    }
  });

  it("still answers a malformed :authority with 400 on a connection whose refusals it replays", async () => {
    const session = openPersistentSession(url, { ca: pki.ca.cert, cert: pki.bob.cert, key: pki.bob.key });
    try {
      expect((await session.call(echoPath)).status).toBe(401);
      expect((await session.call(echoPath)).status).toBe(401);
      expect(
        (await session.call(echoPath, { "content-type": "application/json", ":authority": `::1:${port}` })).status,
      ).toBe(400);
      expect((await session.call(echoPath)).status).toBe(401);
    } finally {
      await session.close();
    }
    expect(server.listening).toBe(true);
  });

  it("fails at start-up when fast-path options come without the gate, or the gate is not certgate's", () => {
    const handler = () => {};
    expect(() => guardRequestHandler(handler, { maxRefusedCallsPerConnection: 5 })).toThrow(/needs options\.gate/);
    expect(() => guardRequestHandler(handler, { contextValues: peerCertificateContextValues })).toThrow(
      /needs options\.gate/,
    );
    expect(() => guardRequestHandler(handler, { gate: () => {} })).toThrow(/options\.gate/);
  });
});

describe("npm run demo (fast refusal path)", () => {
  let tmp: string;
  let demo: ExampleProcess;
  let url: string;
  const read = (name: string) => readFile(join(tmp, ".certgate", "demo", name), "utf8");
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), "certgate-demo-fast-"));
    demo = await startExample("demo", { cwd: tmp, env: { PORT: "0" } });
    url = `https://localhost:${printedPort(demo.output().stdout)}`;
  });
  afterAll(async () => {
    await demo?.stop();
    await rm(tmp, { recursive: true, force: true });
  });

  for (const who of ["bob", undefined] as const) {
    it(`refuses ${who ?? "a client without a certificate"} with the same 401 on every call of one connection, and GOAWAY after ${bound}`, async () => {
      const tls = who === undefined ? {} : { cert: await read(`${who}.pem`), key: await read(`${who}-key.pem`) };
      const session = openPersistentSession(url, { ca: await read("ca.pem"), ...tls });
      try {
        const first = await expectSameRefusalThenGoaway(
          session,
          bound,
          () => session.call(echoPath),
          401,
          /"code":"unauthenticated"/,
        );
        expect(first.body).toMatch(
          who === undefined ? /no client certificate presented/ : /client certificate not allowed/,
        );
      } finally {
        await session.close();
      }
      expect(demo.running()).toBe(true);
    });
  }

  it(`admits alice on ${bound + 20} calls of one connection, without GOAWAY`, async () => {
    const session = openPersistentSession(url, {
      ca: await read("ca.pem"),
      cert: await read("alice.pem"),
      key: await read("alice-key.pem"),
    });
    try {
      await expectAdmittedThroughout(
        session,
        bound + 20,
        () => session.call(echoPath, undefined, '{"text":"hi"}'),
        /"text":"hi \(from/,
      );
    } finally {
      await session.close();
    }
  });
});

describe("certgate serve (fast refusal path)", () => {
  let fixture: CliFixture;
  let serve: Serve;
  const list = "/certgate.v1.CertificateStoreService/ListCertificates";
  const del = "/certgate.v1.CertificateStoreService/DeleteCertificate";
  const health = "/grpc.health.v1.Health/Check";
  const tlsOf = (who: "reader" | "admin" | "bob" | "foreign") => ({
    ca: fixture.pki.ca.cert,
    ...(who === "bob"
      ? { cert: fixture.pki.bob.cert, key: fixture.pki.bob.key }
      : who === "foreign"
        ? { cert: fixture.foreign.cert, key: fixture.foreign.key }
        : { cert: fixture[who].cert, key: fixture[who].key }),
  });
  beforeAll(async () => {
    fixture = await createCliFixture();
    serve = await startServe([
      ...["--data-dir", join(fixture.tmp, "data")],
      ...["--tls-cert", fixture.files["server.pem"]!, "--tls-key", fixture.files["server-key.pem"]!],
      ...["--admin", parseCertificate(fixture.admin.cert).sha256],
      ...["--reader", parseCertificate(fixture.reader.cert).sha256],
    ]);
  });
  afterAll(async () => {
    await serve?.stop();
    killAll();
    await rm(fixture.tmp, { recursive: true, force: true });
  });

  it(`refuses an unknown certificate with the same Unauthenticated on every call of one connection, and GOAWAY after ${bound}`, async () => {
    const session = openPersistentSession(serve.url, tlsOf("bob"));
    try {
      const first = await expectSameRefusalThenGoaway(
        session,
        bound,
        () => session.call(list),
        401,
        /"code":"unauthenticated"/,
      );
      expect(first.body).toMatch(/client certificate not allowed/);
    } finally {
      await session.close();
    }
  });

  it(`refuses a reader's DeleteCertificate with the same PermissionDenied on every call, and GOAWAY after ${bound}`, async () => {
    const session = openPersistentSession(serve.url, tlsOf("reader"));
    try {
      const call = () => session.call(del, undefined, '{"certificateId":"alice"}');
      const first = await expectSameRefusalThenGoaway(session, bound, call, 403, /"code":"permission_denied"/);
      expect(first.body).toMatch(/DeleteCertificate needs an admin client certificate/);
    } finally {
      await session.close();
    }
  });

  it("answers the same refusal on a new connection as the replayed ones (gRPC protocol, trailers included)", async () => {
    const grpc = { "content-type": "application/grpc", te: "trailers" };
    const frame = Buffer.from([0, 0, 0, 0, 0]);
    const one = openPersistentSession(serve.url, tlsOf("foreign"));
    const two = openPersistentSession(serve.url, tlsOf("foreign"));
    try {
      const fresh = await one.call(list, grpc, frame);
      expect(fresh.trailers["grpc-status"]).toBe("16");
      for (let i = 0; i < 5; i++) expect(await two.call(list, grpc, frame)).toEqual(fresh);
    } finally {
      await one.close();
      await two.close();
    }
  });

  it(`admits a reader's ListCertificates and a certificate-less health check on ${bound + 20} calls of one connection each, without GOAWAY`, async () => {
    const reader = openPersistentSession(serve.url, tlsOf("reader"));
    const anonymous = openPersistentSession(serve.url, { ca: fixture.pki.ca.cert });
    try {
      await expectAdmittedThroughout(reader, bound + 20, () => reader.call(list), /^\{/);
      await expectAdmittedThroughout(anonymous, bound + 20, () => anonymous.call(health), /SERVING/);
    } finally {
      await reader.close();
      await anonymous.close();
    }
  });

  it("keeps serving: an admin still deletes, and a malformed request still gets 400", async () => {
    const admin = openPersistentSession(serve.url, tlsOf("admin"));
    try {
      const answer = await admin.call(del, undefined, '{"certificateId":"missing"}');
      expect(answer.body).toMatch(/"code":"not_found"/);
    } finally {
      await admin.close();
    }
    const port = Number(new URL(serve.url).port);
    expect((await h2Call(port, { authority: `::1:${port}`, path: list })).status).toBe(400);
    expect(serve.child.exitCode).toBeNull();
  });
});
