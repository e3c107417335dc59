import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Code, createClient } from "@connectrpc/connect";
import { EchoService } from "../../src/gen/certgate/example/v1/echo_pb.js";
import {
  createChangeNotifier,
  createClientCertGate,
  createClientCertInterceptor,
  type CertificateStore,
  type ClientCertOptions,
  type StoreVerdict,
} from "../../src/index.js";
import { createDecide } from "../../src/decision/decision.js";
import {
  certificateOf,
  connectErrorOf,
  createTestPki,
  createTestStore,
  openTransport,
  startEchoServer,
  waitFor,
  type OpenTransport,
  type Protocol,
  type TestPki,
  type TestServer,
} from "../support/harness.js";

// The decision is cached per connection; these tests prove that the cache
// never outlives a store change or the end of the validity window, on an
// HTTP/2 connection (or HTTP/1.1 keep-alive connection) that stays open.

let pki: TestPki;
beforeAll(async () => {
  pki = await createTestPki();
});

const servers: TestServer[] = [];
const transports: OpenTransport[] = [];
afterEach(() => {
  for (const t of transports.splice(0)) t.close();
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

for (const via of ["interceptor", "gate"] as const) {
  async function serve(options: ClientCertOptions) {
    const server = await startEchoServer(
      via === "gate"
        ? { pki, requestGate: createClientCertGate(options) }
        : { pki, interceptors: [createClientCertInterceptor(options)] },
    );
    servers.push(server);
    return server;
  }

  function connect(server: TestServer, protocol: Protocol = "connect", httpVersion: "1.1" | "2" = "2") {
    const t = openTransport(server, pki, pki.alice, protocol, httpVersion);
    transports.push(t);
    return createClient(EchoService, t.transport);
  }

  async function refused(call: Promise<unknown>) {
    const error = await connectErrorOf(call);
    expect(error.code).toBe(Code.Unauthenticated);
    return error.rawMessage;
  }

  const name = via === "gate" ? "createClientCertGate()" : "createClientCertInterceptor()";
  describe(`${name} on an open connection`, () => {
    const connections: [Protocol, "1.1" | "2"][] = [
      ["connect", "2"],
      ["grpc", "2"],
      ["connect", "1.1"],
    ];
    for (const [protocol, httpVersion] of connections) {
      const over = `${protocol} over HTTP/${httpVersion}`;
      it(`refuses the very next call once the certificate is removed (${over})`, async () => {
        const store = createTestStore([pki.alice]);
        const server = await serve({ store });
        const c = connect(server, protocol, httpVersion);
        expect((await c.echo({ text: "before" })).text).toBe("before");
        store.remove(pki.alice);
        expect(await refused(c.echo({ text: "after" }))).toBe("client certificate not allowed");
        expect(server.log.calls).toEqual(["echo"]);
        expect(server.stats.connections).toBe(1);
        if (httpVersion === "2") expect(server.stats.sessions).toBe(1);
      });

      it(`admits the very next call once the certificate is added (${over})`, async () => {
        const store = createTestStore([]);
        const server = await serve({ store });
        const c = connect(server, protocol, httpVersion);
        expect(await refused(c.echo({ text: "before" }))).toBe("client certificate not allowed");
        store.add(pki.alice);
        expect((await c.echo({ text: "after" })).text).toBe("after");
        expect(server.log.calls).toEqual(["echo"]);
        // The gate's HTTP/1.1 refusal closes its connection (Connection:
        // close) rather than read the body: the next call comes on a new one.
        expect(server.stats.connections).toBe(httpVersion === "1.1" && via === "gate" ? 2 : 1);
        if (httpVersion === "2") expect(server.stats.sessions).toBe(1);
      });
    }

    it("admits on an old connection within the validity window, then refuses once the clock passes notAfter", async () => {
      const alice = certificateOf(pki.alice);
      let now = Date.now();
      const store = createTestStore([pki.alice]);
      const server = await serve({ store, clock: () => now });
      const c = connect(server, "grpc");
      expect((await c.echo({ text: "1" })).text).toBe("1");
      now = alice.notAfter.getTime() + 1;
      expect(await refused(c.echo({ text: "2" }))).toBe("client certificate expired");
      expect(server.stats.sessions).toBe(1);
      expect(store.lookups).toBe(1);
    });

    it("admits many calls on one connection with one look-up", async () => {
      const store = createTestStore([pki.alice]);
      const server = await serve({ store });
      const c = connect(server);
      for (let i = 0; i < 5; i++) await c.echo({ text: `${i}` });
      expect(store.lookups).toBe(1);
    });

    it("admits concurrent first calls on a new connection with one shared look-up", async () => {
      const store = createTestStore([pki.alice]);
      const server = await serve({ store });
      const c = connect(server);
      const texts = await Promise.all(Array.from({ length: 8 }, (_, i) => c.echo({ text: `${i}` })));
      expect(texts.map((r) => r.text)).toEqual(["0", "1", "2", "3", "4", "5", "6", "7"]);
      expect(store.lookups).toBe(1);
      expect(server.stats.sessions).toBe(1);
    });

    it("refuses concurrent first calls on a new connection with one shared look-up", async () => {
      const store = createTestStore([]);
      const server = await serve({ store });
      const c = connect(server, "grpc");
      const messages = await Promise.all(Array.from({ length: 8 }, () => refused(c.echo({ text: "x" }))));
      expect(new Set(messages)).toEqual(new Set(["client certificate not allowed"]));
      expect(store.lookups).toBe(1);
      expect(server.log.calls).toEqual([]);
    });

    it("refuses after a removal even when a look-up started before it answers late with an admission", async () => {
      const notifier = createChangeNotifier();
      const pending: ((verdict: StoreVerdict) => void)[] = [];
      const store: CertificateStore = {
        get revision() {
          return notifier.revision;
        },
        lookup: () => new Promise<StoreVerdict>((resolve) => pending.push(resolve)),
        onChange: notifier.onChange,
        close: () => Promise.resolve(),
      };
      const server = await serve({ store });
      const c = connect(server);
      const first = c.echo({ text: "first" });
      await waitFor(() => pending.length === 1, "the first look-up");
      notifier.changed(); // the certificate is removed while the first look-up runs
      const second = refused(c.echo({ text: "second" }));
      await waitFor(() => pending.length === 2, "the second look-up");
      pending[1]!({ kind: "refused", reason: "not_allowed" });
      expect(await second).toBe("client certificate not allowed");
      // The stale answer to the first look-up arrives last.
      pending[0]!({ kind: "admitted", entry: { id: "alice" } });
      expect((await first).text).toBe("first");
      expect(await refused(c.echo({ text: "third" }))).toBe("client certificate not allowed");
      expect(pending).toHaveLength(2);
      expect(server.stats.sessions).toBe(1);
    });

    it("admits again after a verdict's expiresAt passes, asking the store again", async () => {
      let now = Date.now();
      let lookups = 0;
      let admit = true;
      const notifier = createChangeNotifier();
      const store: CertificateStore = {
        revision: 1,
        lookup: () => {
          lookups++;
          return Promise.resolve<StoreVerdict>(
            admit
              ? { kind: "admitted", entry: { id: "alice" }, expiresAt: now + 1000 }
              : { kind: "refused", reason: "not_allowed", expiresAt: now + 1000 },
          );
        },
        onChange: notifier.onChange,
        close: () => Promise.resolve(),
      };
      const server = await serve({ store, clock: () => now });
      const c = connect(server);
      await c.echo({ text: "1" });
      await c.echo({ text: "2" });
      expect(lookups).toBe(1);
      now += 1000;
      admit = false;
      expect(await refused(c.echo({ text: "3" }))).toBe("client certificate not allowed");
      expect(lookups).toBe(2);
    });

    it("refuses until a refusal's expiresAt passes, then admits", async () => {
      let now = Date.now();
      let admit = false;
      const notifier = createChangeNotifier();
      const store: CertificateStore = {
        revision: 1,
        lookup: () =>
          Promise.resolve<StoreVerdict>(
            admit
              ? { kind: "admitted", entry: { id: "alice" } }
              : { kind: "refused", reason: "not_allowed", expiresAt: now + 1000 },
          ),
        onChange: notifier.onChange,
        close: () => Promise.resolve(),
      };
      const server = await serve({ store, clock: () => now });
      const c = connect(server);
      expect(await refused(c.echo({ text: "1" }))).toBe("client certificate not allowed");
      admit = true;
      expect(await refused(c.echo({ text: "2" }))).toBe("client certificate not allowed");
      now += 1000;
      expect((await c.echo({ text: "3" })).text).toBe("3");
    });
  });
}

describe("createDecide()", () => {
  // The end-to-end tests above cannot force calls to overlap; here they do.
  it("admits concurrent decisions on one connection with one pending look-up", async () => {
    const notifier = createChangeNotifier();
    const pending: ((verdict: StoreVerdict) => void)[] = [];
    const store: CertificateStore = {
      get revision() {
        return notifier.revision;
      },
      lookup: () => new Promise<StoreVerdict>((resolve) => pending.push(resolve)),
      onChange: notifier.onChange,
      close: () => Promise.resolve(),
    };
    const decide = createDecide({ store });
    const peer = {
      certificate: certificateOf(pki.alice),
      authorized: false,
      authorizationError: undefined,
      encrypted: true,
    };
    const results = Array.from({ length: 8 }, () => decide(peer));
    expect(pending).toHaveLength(1);
    pending[0]!({ kind: "admitted", entry: { id: "alice" } });
    const decisions = await Promise.all(results);
    expect(decisions.map((d) => d.kind)).toEqual(Array(8).fill("admitted"));
    // Warm: answered synchronously, without a promise.
    expect(decide(peer)).toMatchObject({ kind: "admitted" });
    expect(decide(peer)).not.toBeInstanceOf(Promise);
  });

  it("refuses concurrent decisions after a change with one new look-up, not the old one's answer", async () => {
    const notifier = createChangeNotifier();
    const pending: ((verdict: StoreVerdict) => void)[] = [];
    const store: CertificateStore = {
      get revision() {
        return notifier.revision;
      },
      lookup: () => new Promise<StoreVerdict>((resolve) => pending.push(resolve)),
      onChange: notifier.onChange,
      close: () => Promise.resolve(),
    };
    const decide = createDecide({ store });
    const peer = {
      certificate: certificateOf(pki.alice),
      authorized: false,
      authorizationError: undefined,
      encrypted: true,
    };
    const before = decide(peer);
    notifier.changed();
    const after = Array.from({ length: 4 }, () => decide(peer));
    expect(pending).toHaveLength(2);
    pending[1]!({ kind: "refused", reason: "not_allowed" });
    pending[0]!({ kind: "admitted", entry: { id: "alice" } });
    expect((await before).kind).toBe("admitted");
    expect((await Promise.all(after)).map((d) => d.kind)).toEqual(Array(4).fill("refused"));
    expect(await decide(peer)).toMatchObject({ kind: "refused", reason: "not_allowed" });
    expect(pending).toHaveLength(2);
  });
});
