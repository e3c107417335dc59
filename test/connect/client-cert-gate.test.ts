import * as https from "node:https";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  createChangeNotifier,
  createClientCertGate,
  createClientCertInterceptor,
  createThumbprintStore,
  type CertificateStore,
  type ClientCertOptions,
  type DecisionEvent,
} from "../../src/index.js";
import { issueDevCertificate, type IssuedCertificate } from "../../src/dev-certificates.js";
import {
  certificateOf,
  closeAfterTests,
  createTestPki,
  echoPath,
  grpcFrame,
  issueOutOfWindowCertificates,
  rawHttp2Request,
  startEchoServer,
  type Protocol,
  type TestPki,
  type TestServer,
} from "../support/harness.js";

const connectHeaders = { "content-type": "application/proto", "connect-protocol-version": "1" };
const grpcHeaders = { "content-type": "application/grpc", te: "trailers" };

let pki: TestPki;
let carol: IssuedCertificate;
let expired: IssuedCertificate;
let notYetValid: IssuedCertificate;
beforeAll(async () => {
  pki = await createTestPki();
  carol = await issueDevCertificate(pki.ca, { commonName: "carol" });
  ({ expired, notYetValid } = await issueOutOfWindowCertificates(pki));
});

const { servers, echoClient } = closeAfterTests();

// Alice's certificate pinned, decided by the gate or by the interceptor.
async function serveGate(options?: Partial<ClientCertOptions>) {
  const store = createThumbprintStore(certificateOf(pki.alice).sha256);
  const server = await startEchoServer({ pki, requestGate: createClientCertGate({ store, ...options }) });
  servers.push(server);
  return server;
}

async function serveInterceptor() {
  const store = createThumbprintStore(certificateOf(pki.alice).sha256);
  const server = await startEchoServer({ pki, interceptors: [createClientCertInterceptor({ store })] });
  servers.push(server);
  return server;
}

describe("createClientCertGate()", () => {
  let gate: TestServer;
  let interceptor: TestServer;
  beforeAll(async () => {
    gate = await serveGate();
    interceptor = await serveInterceptor();
  });
  afterEach(() => {
    gate.log.calls.length = 0;
    interceptor.log.calls.length = 0;
  });

  describe("before the request body", () => {
    it("refuses a Connect call whose body never comes, with 401", async () => {
      const res = await rawHttp2Request(gate, pki, pki.bob, { path: echoPath, headers: connectHeaders, end: false });
      expect(res.status).toBe(401);
      expect(JSON.parse(res.body.toString())).toMatchObject({
        code: "unauthenticated",
        message: "client certificate not allowed",
      });
      expect(gate.log.calls).toEqual([]);
    });

    it("refuses a gRPC call whose body never comes, with grpc-status 16", async () => {
      const res = await rawHttp2Request(gate, pki, undefined, { path: echoPath, headers: grpcHeaders, end: false });
      expect(res.status).toBe(200);
      expect(res.trailers["grpc-status"]).toBe("16");
      expect(decodeURIComponent(String(res.trailers["grpc-message"]))).toBe("no client certificate presented");
      expect(gate.log.calls).toEqual([]);
    });

    it("admits a call whose body arrives, and reads it", async () => {
      const res = await rawHttp2Request(gate, pki, pki.alice, {
        path: echoPath,
        headers: grpcHeaders,
        body: grpcFrame("read me"),
      });
      expect(res.trailers["grpc-status"]).toBe("0");
      expect(res.body.subarray(5).toString()).toContain("read me");
      expect(gate.log.calls).toEqual(["echo"]);
    });

    it("refuses a call that sends 4 MB of body and never ends it, with 401", async () => {
      // Node's HTTP/2 server buffers unread data (up to maxSessionMemory), so
      // what proves the point is that the answer comes although the body,
      // which the handler would need whole, never ends.
      const res = await rawHttp2Request(gate, pki, pki.bob, {
        path: echoPath,
        headers: connectHeaders,
        body: Buffer.alloc(4 * 1024 * 1024, 0x41),
        end: false,
      });
      expect(res.status).toBe(401);
      expect(gate.log.calls).toEqual([]);
    });

    it("refuses a Connect call over HTTP/1.1 whose chunked body never ends, with 401", async () => {
      const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = https.request(`${gate.url}${echoPath}`, {
          method: "POST",
          agent: false,
          ca: pki.ca.cert,
          cert: pki.bob.cert,
          key: pki.bob.key,
          headers: { ...connectHeaders, "transfer-encoding": "chunked" },
        });
        req.on("error", reject);
        req.on("response", (response) => {
          let body = "";
          response.setEncoding("utf8");
          response.on("data", (chunk: string) => (body += chunk));
          response.on("end", () => {
            req.destroy();
            resolve({ status: response.statusCode ?? 0, body });
          });
        });
        req.flushHeaders();
      });
      expect(res.status).toBe(401);
      expect(JSON.parse(res.body)).toMatchObject({ code: "unauthenticated" });
      expect(gate.log.calls).toEqual([]);
    });

    it("refuses a malformed body as unauthenticated, not as a bad request: it never parsed it", async () => {
      const res = await rawHttp2Request(gate, pki, pki.bob, {
        path: echoPath,
        headers: { ...connectHeaders, "content-type": "application/json" },
        body: "{ this is not json",
      });
      expect(res.status).toBe(401);
    });

    it("admits the malformed body as far as the parser, which answers 400 for an admitted client", async () => {
      const res = await rawHttp2Request(gate, pki, pki.alice, {
        path: echoPath,
        headers: { ...connectHeaders, "content-type": "application/json" },
        body: "{ this is not json",
      });
      expect(res.status).toBe(400);
      expect(gate.log.calls).toEqual([]);
      // The interceptor, by contrast, only runs after the body was parsed.
      const late = await rawHttp2Request(interceptor, pki, pki.bob, {
        path: echoPath,
        headers: { ...connectHeaders, "content-type": "application/json" },
        body: "{ this is not json",
      });
      expect(late.status).toBe(400);
    });
  });
});

/** A call's outcome as a comparable string: `admitted` or `code: message`. */
async function outcome(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return "admitted";
  } catch (error) {
    const e = ConnectError.from(error);
    return `${Code[e.code].toLowerCase()}: ${e.rawMessage}`;
  }
}

describe("createClientCertGate() and createClientCertInterceptor()", () => {
  // One store for every reason: alice, expired and notYetValid are admitted,
  // bob is refused, and looking carol up fails.
  function mixedStore(): CertificateStore {
    const notifier = createChangeNotifier();
    const admitted = new Set([pki.alice, expired, notYetValid].map((c) => certificateOf(c).sha256));
    const failing = certificateOf(carol).sha256;
    return {
      revision: 1,
      lookup: (certificate) =>
        certificate.sha256 === failing
          ? Promise.reject(new Error("store down"))
          : Promise.resolve(
              admitted.has(certificate.sha256)
                ? { kind: "admitted", entry: { id: certificate.sha256 } }
                : { kind: "refused", reason: "not_allowed" },
            ),
      onChange: notifier.onChange,
      close: () => Promise.resolve(),
    };
  }

  it("admits and refuses alike, for every reason, over Connect and gRPC", async () => {
    const events: Record<"gate" | "interceptor", DecisionEvent[]> = { gate: [], interceptor: [] };
    const onDecision = (e: DecisionEvent) => events[e.via as "gate" | "interceptor"].push(e);
    const gate = await startEchoServer({ pki, requestGate: createClientCertGate({ store: mixedStore(), onDecision }) });
    const interceptor = await startEchoServer({
      pki,
      interceptors: [createClientCertInterceptor({ store: mixedStore(), onDecision })],
    });
    servers.push(gate, interceptor);
    const clients: [string, IssuedCertificate | undefined][] = [
      ["alice", pki.alice],
      ["bob", pki.bob],
      ["none", undefined],
      ["expired", expired],
      ["not yet valid", notYetValid],
      ["carol (store fails)", carol],
    ];
    const table: Record<string, string> = {};
    for (const server of [gate, interceptor]) {
      for (const [who, cert] of clients) {
        for (const protocol of ["connect", "grpc"] as Protocol[]) {
          const result = await outcome(echoClient(server, pki, cert, protocol).echo({ text: "x" }));
          const key = `${who} over ${protocol}`;
          if (server === gate) table[key] = result;
          else expect(`${key}: ${result}`).toBe(`${key}: ${table[key]}`);
        }
      }
    }
    expect(table).toEqual({
      "alice over connect": "admitted",
      "alice over grpc": "admitted",
      "bob over connect": "unauthenticated: client certificate not allowed",
      "bob over grpc": "unauthenticated: client certificate not allowed",
      "none over connect": "unauthenticated: no client certificate presented",
      "none over grpc": "unauthenticated: no client certificate presented",
      "expired over connect": "unauthenticated: client certificate expired",
      "expired over grpc": "unauthenticated: client certificate expired",
      "not yet valid over connect": "unauthenticated: client certificate not yet valid",
      "not yet valid over grpc": "unauthenticated: client certificate not yet valid",
      "carol (store fails) over connect": "unauthenticated: client certificate could not be checked: store unavailable",
      "carol (store fails) over grpc": "unauthenticated: client certificate could not be checked: store unavailable",
    });
    const strip = (e: DecisionEvent) => ({
      kind: e.kind,
      reason: e.reason,
      thumbprint: e.thumbprint,
      procedure: e.procedure,
    });
    expect(events.gate.map(strip)).toEqual(events.interceptor.map(strip));
    expect(events.gate).toHaveLength(12);
    expect(gate.log.calls).toEqual(["echo", "echo"]);
    expect(interceptor.log.calls).toEqual(["echo", "echo"]);
  });

  it("refuses in the gate with the same message the interceptor gives, in the raw response", async () => {
    const gate = await serveGate();
    const interceptor = await serveInterceptor();
    const body = '{"text":"x"}';
    const headers = { ...connectHeaders, "content-type": "application/json" };
    const a = await rawHttp2Request(gate, pki, pki.bob, { path: echoPath, headers, body });
    const b = await rawHttp2Request(interceptor, pki, pki.bob, { path: echoPath, headers, body });
    expect([a.status, a.body.toString()]).toEqual([b.status, b.body.toString()]);
    expect(a.status).toBe(401);
  });
});
