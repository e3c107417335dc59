import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { Code, type Interceptor } from "@connectrpc/connect";
import {
  clientCertificateKey,
  createClientCertInterceptor,
  createThumbprintStore,
  type Certificate,
  type ClientCertOptions,
  type DecisionEvent,
} from "../../src/index.js";
import type { IssuedCertificate } from "../../src/dev-certificates.js";
import {
  certificateOf,
  closeAfterTests,
  connectErrorOf,
  createTestPki,
  issueOutOfWindowCertificates,
  startEchoServer,
  type Protocol,
  type TestPki,
  type TestServer,
} from "../support/harness.js";

let pki: TestPki;
let expired: IssuedCertificate;
let notYetValid: IssuedCertificate;

beforeAll(async () => {
  pki = await createTestPki();
  ({ expired, notYetValid } = await issueOutOfWindowCertificates(pki));
});

const { servers, echoClient } = closeAfterTests();

async function serve(
  options: Omit<ClientCertOptions, "store"> & { pinned?: IssuedCertificate[] } = {},
  around: { before?: Interceptor; after?: Interceptor } = {},
): Promise<TestServer> {
  const pinned = options.pinned ?? [pki.alice];
  const certgate = createClientCertInterceptor({
    ...options,
    store: createThumbprintStore(pinned.map((c) => certificateOf(c).sha256)),
  });
  const interceptors = [around.before, certgate, around.after].filter((i): i is Interceptor => i !== undefined);
  const server = await startEchoServer({ pki, interceptors });
  servers.push(server);
  return server;
}

function client(server: TestServer, cert: IssuedCertificate | undefined, protocol: Protocol = "connect") {
  return echoClient(server, pki, cert, protocol);
}

async function refusal(server: TestServer, cert: IssuedCertificate | undefined, protocol: Protocol) {
  const error = await connectErrorOf(client(server, cert, protocol).echo({ text: "hi" }));
  expect(error.code).toBe(Code.Unauthenticated);
  expect(server.log.calls).toEqual([]);
  return error.rawMessage;
}

describe("createClientCertInterceptor()", () => {
  for (const protocol of ["connect", "grpc"] as const) {
    describe(`refusal reasons over ${protocol}`, () => {
      let server: TestServer;
      let lenient: TestServer;
      beforeAll(async () => {
        server = await serve({ pinned: [pki.alice, expired, notYetValid] });
        lenient = await serve({
          pinned: [expired, notYetValid],
          validateNotAfter: false,
          validateNotBefore: false,
        });
      });
      afterEach(() => {
        server.log.calls.length = 0;
        lenient.log.calls.length = 0;
      });

      it("admits the pinned certificate", async () => {
        expect((await client(server, pki.alice, protocol).echo({ text: "hi" })).text).toBe("hi");
        expect(server.log.calls).toEqual(["echo"]);
      });
      it("refuses a call without a certificate", async () => {
        expect(await refusal(server, undefined, protocol)).toBe("no client certificate presented");
      });
      it("refuses a certificate that is not allowed", async () => {
        expect(await refusal(server, pki.bob, protocol)).toBe("client certificate not allowed");
      });
      it("refuses a pinned certificate that expired", async () => {
        expect(await refusal(server, expired, protocol)).toBe("client certificate expired");
      });
      it("refuses a pinned certificate that is not yet valid", async () => {
        expect(await refusal(server, notYetValid, protocol)).toBe("client certificate not yet valid");
      });
      it("admits an expired or not yet valid certificate when told not to check the window", async () => {
        for (const cert of [expired, notYetValid]) {
          expect((await client(lenient, cert, protocol).echo({ text: "hi" })).text).toBe("hi");
        }
      });
      it("refuses an unpinned certificate even when told not to check the window", async () => {
        expect(await refusal(lenient, pki.alice, protocol)).toBe("client certificate not allowed");
      });
    });
  }

  describe("with a clock", () => {
    let now = 0;
    let server: TestServer;
    let alice: Certificate;
    beforeAll(async () => {
      alice = certificateOf(pki.alice);
      server = await serve({ clock: () => new Date(now) });
    });
    afterEach(() => {
      server.log.calls.length = 0;
    });
    it("admits at the first and at the last instant of the validity window", async () => {
      const c = client(server, pki.alice);
      now = alice.notBefore.getTime();
      expect((await c.echo({ text: "a" })).text).toBe("a");
      now = alice.notAfter.getTime();
      expect((await c.echo({ text: "b" })).text).toBe("b");
    });
    it("refuses one millisecond after the window as expired", async () => {
      now = alice.notAfter.getTime() + 1;
      expect(await refusal(server, pki.alice, "connect")).toBe("client certificate expired");
    });
    it("refuses one millisecond before the window as not yet valid", async () => {
      now = alice.notBefore.getTime() - 1;
      expect(await refusal(server, pki.alice, "grpc")).toBe("client certificate not yet valid");
    });
  });

  describe("onDecision", () => {
    const events: DecisionEvent[] = [];
    let server: TestServer;
    beforeAll(async () => {
      server = await serve({ onDecision: (e) => events.push(e) });
    });
    afterEach(() => {
      events.length = 0;
      server.log.calls.length = 0;
    });
    it("admits with one event per call: kind, procedure, thumbprint, entry", async () => {
      const c = client(server, pki.alice);
      await c.echo({ text: "1" });
      await c.echo({ text: "2" });
      const alice = certificateOf(pki.alice);
      expect(events).toHaveLength(2);
      for (const e of events) {
        expect(e).toMatchObject({
          kind: "admitted",
          reason: undefined,
          procedure: "/certgate.example.v1.EchoService/Echo",
          thumbprint: alice.sha256,
          entry: { id: alice.sha256, thumbprint: alice.sha256 },
          error: undefined,
          via: "interceptor",
        });
        expect(e.certificate?.sha1).toBe(alice.sha1);
      }
    });
    it("refuses with one event per call: kind, reason, procedure, thumbprint", async () => {
      await connectErrorOf(client(server, pki.bob, "grpc").echo({ text: "x" }));
      await connectErrorOf(client(server, undefined).echo({ text: "x" }));
      expect(events).toHaveLength(2);
      expect(events[0]).toMatchObject({
        kind: "refused",
        reason: "not_allowed",
        procedure: "/certgate.example.v1.EchoService/Echo",
        thumbprint: certificateOf(pki.bob).sha256,
        entry: undefined,
      });
      expect(events[1]).toMatchObject({
        kind: "refused",
        reason: "no_certificate",
        thumbprint: undefined,
        certificate: undefined,
      });
    });
    it("admits and refuses as before when onDecision throws", async () => {
      const throwing = await serve({
        onDecision: () => {
          throw new Error("hook failed");
        },
      });
      expect((await client(throwing, pki.alice).echo({ text: "ok" })).text).toBe("ok");
      throwing.log.calls.length = 0;
      expect(await refusal(throwing, pki.bob, "connect")).toBe("client certificate not allowed");
    });
  });

  describe("clientCertificateKey", () => {
    const seen: { where: string; certificate: Certificate | undefined }[] = [];
    const spy =
      (where: string): Interceptor =>
      (next) =>
      (req) => {
        seen.push({ where, certificate: req.contextValues.get(clientCertificateKey) });
        return next(req);
      };
    let server: TestServer;
    beforeAll(async () => {
      server = await serve({}, { before: spy("before"), after: spy("after") });
    });
    afterEach(() => {
      seen.length = 0;
      server.log.calls.length = 0;
      server.log.clientCommonNames.length = 0;
    });
    it("admits with the certificate visible to the handler and later interceptors", async () => {
      await client(server, pki.alice).echo({ text: "hi" });
      expect(server.log.clientCommonNames).toEqual(["CN=alice"]);
      expect(seen.map((s) => [s.where, s.certificate?.sha256])).toEqual([
        ["before", undefined],
        ["after", certificateOf(pki.alice).sha256],
      ]);
    });
    it("refuses before later interceptors and the handler see anything", async () => {
      await refusal(server, pki.bob, "connect");
      expect(seen.map((s) => s.where)).toEqual(["before"]);
      expect(server.log.clientCommonNames).toEqual([]);
    });
  });

  describe("configuration", () => {
    const store = () => createThumbprintStore("00".repeat(20));
    it("admits a complete configuration, and every option takes effect", async () => {
      const events: DecisionEvent[] = [];
      // The clock says 1970: only because both validity checks are off is
      // alice admitted; onDecision hears every call.
      const server = await serve({
        clock: () => 0,
        lookupTimeoutMs: 1000,
        onDecision: (event) => events.push(event),
        validateNotAfter: false,
        validateNotBefore: false,
      });
      expect((await client(server, pki.alice).echo({ text: "hi" })).text).toBe("hi");
      expect(server.log.calls).toEqual(["echo"]);
      server.log.calls.length = 0;
      expect(await refusal(server, pki.bob, "connect")).toBe("client certificate not allowed");
      expect(events.map((e) => [e.kind, e.reason])).toEqual([
        ["admitted", undefined],
        ["refused", "not_allowed"],
      ]);
    });
    it("refuses at creation a missing or malformed option, naming it", () => {
      const bad = (options: unknown) => () => createClientCertInterceptor(options as ClientCertOptions);
      expect(bad(undefined)).toThrow(/options.store/);
      expect(bad({})).toThrow(/options.store/);
      expect(bad({ store: { lookup: 1 } })).toThrow(/options.store/);
      expect(bad({ store: store(), lookupTimeoutMs: 0 })).toThrow(/options.lookupTimeoutMs/);
      expect(bad({ store: store(), lookupTimeoutMs: Number.NaN })).toThrow(/options.lookupTimeoutMs/);
      expect(bad({ store: store(), lookupTimeoutMs: "100" })).toThrow(/options.lookupTimeoutMs/);
      expect(bad({ store: store(), clock: Date.now() })).toThrow(/options.clock/);
      expect(bad({ store: store(), onDecision: "log" })).toThrow(/options.onDecision/);
      expect(bad({ store: store(), validateNotAfter: "false" })).toThrow(/options.validateNotAfter/);
    });
  });
});
