import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fromBinary } from "@bufbuild/protobuf";
import { EchoResponseSchema } from "../../src/gen/certgate/example/v1/echo_pb.js";
import {
  createChangeNotifier,
  createClientCertInterceptor,
  createThumbprintStore,
  refusalMessage,
  type CertificateStore,
  type DecisionEvent,
} from "../../src/index.js";
import type { IssuedCertificate } from "../../src/dev-certificates.js";
import {
  certificateOf,
  createTestPki,
  echoPath,
  grpcFrame,
  issueOutOfWindowCertificates,
  rawHttp2Request,
  startEchoServer,
  type RawResponse,
  type TestPki,
  type TestServer,
} from "../support/harness.js";

// What a refused client sees on the wire, read with a plain node:http2
// client: HTTP 401 with a JSON error on the Connect protocol, grpc-status 16
// on gRPC, and never a word about which certificates are allowed.

let pki: TestPki;
let expired: IssuedCertificate;
let notYetValid: IssuedCertificate;
let server: TestServer;
let pins: string[];
const responses: RawResponse[] = [];

beforeAll(async () => {
  pki = await createTestPki();
  ({ expired, notYetValid } = await issueOutOfWindowCertificates(pki));
  const pinned = [pki.alice, expired, notYetValid].map(certificateOf);
  pins = [...pinned.map((c) => c.sha1), ...pinned.map((c) => c.sha256)];
  server = await startEchoServer({
    pki,
    interceptors: [createClientCertInterceptor({ store: createThumbprintStore(pins) })],
  });
});
afterAll(() => server?.close());

const refusals: [string, () => IssuedCertificate | undefined, string][] = [
  ["no certificate presented", () => undefined, "no client certificate presented"],
  ["a certificate not allowed", () => pki.bob, "client certificate not allowed"],
  ["an expired certificate", () => expired, "client certificate expired"],
  ["a certificate not yet valid", () => notYetValid, "client certificate not yet valid"],
];

describe("refusals on the Connect protocol (raw HTTP/2)", () => {
  const connectJson = { "content-type": "application/json", "connect-protocol-version": "1" };
  it("admits alice with 200 and the echo", async () => {
    const res = await rawHttp2Request(server, pki, pki.alice, {
      path: echoPath,
      headers: connectJson,
      body: '{"text":"hi"}',
    });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body.toString())).toEqual({ text: "hi" });
  });
  for (const [what, cert, message] of refusals) {
    it(`refuses ${what} with HTTP 401 and {"code":"unauthenticated"}`, async () => {
      const res = await rawHttp2Request(server, pki, cert(), {
        path: echoPath,
        headers: connectJson,
        body: '{"text":"hi"}',
      });
      responses.push(res);
      expect(res.status).toBe(401);
      expect(res.headers["content-type"]).toBe("application/json");
      expect(JSON.parse(res.body.toString())).toMatchObject({ code: "unauthenticated", message });
    });
  }
});

describe("refusals on the gRPC protocol (raw HTTP/2)", () => {
  const grpc = { "content-type": "application/grpc", te: "trailers" };
  it("admits alice with grpc-status 0 and the echo", async () => {
    const res = await rawHttp2Request(server, pki, pki.alice, { path: echoPath, headers: grpc, body: grpcFrame("hi") });
    expect(res.status).toBe(200);
    expect(res.trailers["grpc-status"]).toBe("0");
    expect(fromBinary(EchoResponseSchema, res.body.subarray(5)).text).toBe("hi");
  });
  for (const [what, cert, message] of refusals) {
    it(`refuses ${what} with grpc-status 16 (Unauthenticated)`, async () => {
      const res = await rawHttp2Request(server, pki, cert(), { path: echoPath, headers: grpc, body: grpcFrame("hi") });
      responses.push(res);
      expect(res.status).toBe(200);
      const status = { ...res.headers, ...res.trailers };
      expect(status["grpc-status"]).toBe("16");
      expect(decodeURIComponent(String(status["grpc-message"]))).toBe(message);
      expect(res.body.length).toBe(0);
    });
  }
});

describe("refusal messages", () => {
  it("refuses without any allowed thumbprint anywhere in the responses", () => {
    expect(responses).toHaveLength(2 * refusals.length);
    const wire = JSON.stringify(responses.map((r) => [r.headers, r.trailers, r.body.toString("latin1")])).toLowerCase();
    for (const pin of pins) {
      const lower = pin.toLowerCase();
      for (const form of [
        lower,
        lower.match(/../g)!.join(":"),
        Buffer.from(pin, "hex").toString("base64").toLowerCase(),
      ]) {
        expect(wire).not.toContain(form);
      }
    }
    // The check above can only fail if it can see a thumbprint at all.
    expect(JSON.stringify([{ p: pins[0] }]).toLowerCase()).toContain(pins[0]!.toLowerCase());
  });

  it("admits a store's own refusal reason into onDecision, but refuses it a place in the message", async () => {
    const alice = certificateOf(pki.alice);
    const notifier = createChangeNotifier();
    const store: CertificateStore = {
      revision: 1,
      lookup: () => Promise.resolve({ kind: "refused", reason: `revoked in favour of ${alice.sha256}` }),
      onChange: notifier.onChange,
      close: () => Promise.resolve(),
    };
    const events: DecisionEvent[] = [];
    const revoking = await startEchoServer({
      pki,
      interceptors: [createClientCertInterceptor({ store, onDecision: (e) => events.push(e) })],
    });
    try {
      const res = await rawHttp2Request(revoking, pki, pki.alice, {
        path: echoPath,
        headers: { "content-type": "application/json" },
        body: "{}",
      });
      expect(res.status).toBe(401);
      expect(JSON.parse(res.body.toString())).toMatchObject({
        code: "unauthenticated",
        message: "client certificate refused",
      });
      expect(res.body.toString()).not.toContain("revoked");
      expect(res.body.toString().toLowerCase()).not.toContain(alice.sha256.toLowerCase());
      expect(events[0]?.reason).toBe(`revoked in favour of ${alice.sha256}`);
    } finally {
      await revoking.close();
    }
  });

  it("refuses with one fixed message per known reason", () => {
    expect(refusalMessage("no_certificate")).toBe("no client certificate presented");
    expect(refusalMessage("not_allowed")).toBe("client certificate not allowed");
    expect(refusalMessage("expired")).toBe("client certificate expired");
    expect(refusalMessage("not_yet_valid")).toBe("client certificate not yet valid");
    expect(refusalMessage("store_unavailable")).toBe("client certificate could not be checked: store unavailable");
    for (const odd of ["toString", "constructor", "__proto__", "hasOwnProperty", ""]) {
      expect(refusalMessage(odd)).toBe("client certificate refused");
    }
  });
});
