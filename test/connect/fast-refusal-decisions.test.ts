import type * as http2 from "node:http2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, createClient } from "@connectrpc/connect";
import { EchoService } from "../../src/gen/certgate/example/v1/echo_pb.js";
import {
  createClientCertGate,
  createThumbprintStore,
  guardRequestHandler,
  type ClientCertOptions,
  type DecisionEvent,
} from "../../src/index.js";
import type { IssuedCertificate } from "../../src/dev-certificates.js";
import {
  certificateOf,
  connectErrorOf,
  createTestPki,
  openTransport,
  rawHttp2Request,
  startEchoServer,
  type TestPki,
  type TestServer,
} from "../support/harness.js";

// The fast path and the gate share one decision per call: the decision
// reads the clock once, so a call decided twice reads it twice. Compared
// side by side with a server whose gate runs alone.

interface Counted {
  server: TestServer;
  clockReads: number;
  events: DecisionEvent[];
  // Calls the adapter got while the fast path recorded the response (its learning step).
  recordedCalls: number;
}

let pki: TestPki;
let plain: Counted;
let fast: Counted;

async function start(withFastPath: boolean): Promise<Counted> {
  const counted = { clockReads: 0, events: [] as DecisionEvent[], recordedCalls: 0 } as Counted;
  const options: ClientCertOptions = {
    store: createThumbprintStore([certificateOf(pki.alice).sha1]),
    clock: () => {
      counted.clockReads++;
      return Date.now();
    },
    onDecision: (e) => counted.events.push(e),
  };
  const gate = createClientCertGate(options);
  counted.server = await startEchoServer({
    pki,
    requestGate: gate,
    wrapHandler: withFastPath
      ? (handler) =>
          guardRequestHandler(
            (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
              // The recording replaces the response's writeHead with its own.
              if (Object.hasOwn(res, "writeHead")) counted.recordedCalls++;
              handler(req, res);
            },
            { gate },
          )
      : undefined,
  });
  return counted;
}

beforeAll(async () => {
  pki = await createTestPki();
  [plain, fast] = await Promise.all([start(false), start(true)]);
});
afterAll(async () => {
  await Promise.all([plain?.server.close(), fast?.server.close()]);
});

// Calls echo `count` times on one connection after two warm-up calls (the
// connection's first decision, the fast path's learning of the path), and
// returns what the calls after warm-up cost the server.
async function callsOn(counted: Counted, client: IssuedCertificate, count: number) {
  const open = openTransport(counted.server, pki, client);
  const echo = createClient(EchoService, open.transport);
  const call = async () => {
    try {
      return (await echo.echo({ text: "hi" })).text;
    } catch (error) {
      const e = await connectErrorOf(Promise.reject(error));
      return `${Code[e.code]}: ${e.rawMessage}`;
    }
  };
  try {
    await call();
    await call();
    const clock = counted.clockReads;
    const events = counted.events.length;
    const results: string[] = [];
    for (let i = 0; i < count; i++) results.push(await call());
    return { results, clockReads: counted.clockReads - clock, events: counted.events.length - events };
  } finally {
    open.close();
  }
}

describe("guardRequestHandler({ gate })", () => {
  it("decides an admitted call once, as the gate alone does", async () => {
    const expected = await callsOn(plain, pki.alice, 10);
    const measured = await callsOn(fast, pki.alice, 10);
    expect(expected.results).toEqual(Array(10).fill("hi"));
    expect(measured.results).toEqual(expected.results);
    expect(expected.clockReads).toBe(10);
    expect(measured.clockReads).toBe(10);
    expect(measured.events).toBe(10);
    expect(fast.events.at(-1)).toMatchObject({ kind: "admitted", via: "gate" });
  });

  it("refuses as the gate alone does, each call decided and reported once", async () => {
    const expected = await callsOn(plain, pki.bob, 10);
    const measured = await callsOn(fast, pki.bob, 10);
    expect(expected.results[0]).toMatch(/^Unauthenticated: /);
    expect(measured.results).toEqual(expected.results);
    expect(measured.clockReads).toBe(expected.clockReads);
    expect(measured.events).toBe(10);
    expect(expected.events).toBe(10);
  });

  it("learns once that a path never reaches the gate, rather than on every call", async () => {
    const request = { path: "/nope.v1.Nope/Nope", headers: { "content-type": "application/proto" } };
    const before = fast.recordedCalls;
    for (let i = 0; i < 10; i++) {
      const [a, b] = await Promise.all([
        rawHttp2Request(plain.server, pki, pki.alice, request),
        rawHttp2Request(fast.server, pki, pki.alice, request),
      ]);
      expect(a.status).toBe(404);
      expect(b.status).toBe(a.status);
    }
    expect(fast.recordedCalls - before).toBe(1);
  });
});
