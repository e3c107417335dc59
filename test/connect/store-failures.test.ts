import { beforeAll, describe, expect, it } from "vitest";
import { Code } from "@connectrpc/connect";
import {
  createChangeNotifier,
  createClientCertGate,
  createClientCertInterceptor,
  type CertificateStore,
  type ClientCertOptions,
  type DecisionEvent,
  type StoreVerdict,
} from "../../src/index.js";
import {
  closeAfterTests,
  connectErrorOf,
  createTestPki,
  startEchoServer,
  type Protocol,
  type TestPki,
  type TestServer,
} from "../support/harness.js";

// A store failure is a refusal (fail closed), with one message that tells
// nothing of the failure: its details go to onDecision only.

const secret = "db password=hunter2 at 10.0.0.5";
const unavailable = "client certificate could not be checked: store unavailable";

let pki: TestPki;
beforeAll(async () => {
  pki = await createTestPki();
});

const { servers, echoClient } = closeAfterTests();

/** A store built from a lookup function; it records the signals it was given. */
function storeOf(
  lookup: (signal: AbortSignal) => Promise<StoreVerdict>,
  revision: () => number = () => 1,
): CertificateStore & { signals: AbortSignal[] } {
  const notifier = createChangeNotifier();
  const signals: AbortSignal[] = [];
  return {
    signals,
    get revision() {
      return revision();
    },
    lookup(_certificate, signal) {
      signals.push(signal);
      return lookup(signal);
    },
    onChange: notifier.onChange,
    close: () => Promise.resolve(),
  };
}

const admitted: StoreVerdict = { kind: "admitted", entry: { id: "alice" } };

const failures: [string, () => CertificateStore & { signals: AbortSignal[] }, boolean][] = [
  ["a lookup that rejects", () => storeOf(() => Promise.reject(new Error(secret))), true],
  [
    "a lookup that throws synchronously",
    () =>
      storeOf(() => {
        throw new Error(secret);
      }),
    true,
  ],
  ["an error verdict", () => storeOf(() => Promise.resolve({ kind: "error", error: new Error(secret) })), true],
  ["a lookup that resolves to undefined", () => storeOf(() => Promise.resolve(undefined as never)), false],
  ["a verdict of an unknown kind", () => storeOf(() => Promise.resolve({ kind: secret } as never)), false],
  [
    "a revision that throws",
    () =>
      storeOf(
        () => Promise.resolve(admitted),
        () => {
          throw new Error(secret);
        },
      ),
    true,
  ],
];

for (const via of ["interceptor", "gate"] as const) {
  async function serve(store: CertificateStore, options: Partial<ClientCertOptions> = {}) {
    const events: DecisionEvent[] = [];
    const certgate = { ...options, store, onDecision: (e: DecisionEvent) => events.push(e) };
    const server = await startEchoServer(
      via === "gate"
        ? { pki, requestGate: createClientCertGate(certgate) }
        : { pki, interceptors: [createClientCertInterceptor(certgate)] },
    );
    servers.push(server);
    return { server, events };
  }

  function client(server: TestServer, protocol: Protocol = "connect") {
    return echoClient(server, pki, pki.alice, protocol);
  }

  describe(`${via === "gate" ? "createClientCertGate()" : "createClientCertInterceptor()"} with a failing store`, () => {
    for (const [what, makeStore, hasError] of failures) {
      it(`refuses on ${what}, as store unavailable, without leaking the failure`, async () => {
        const { server, events } = await serve(makeStore());
        for (const protocol of ["connect", "grpc"] as const) {
          const error = await connectErrorOf(client(server, protocol).echo({ text: "hi" }));
          expect(error.code).toBe(Code.Unauthenticated);
          expect(error.rawMessage).toBe(unavailable);
          expect(JSON.stringify(error.metadata)).not.toContain("hunter2");
        }
        expect(server.log.calls).toEqual([]);
        expect(events).toHaveLength(2);
        for (const e of events) {
          expect(e).toMatchObject({ kind: "refused", reason: "store_unavailable", via });
          if (hasError) expect(String(e.error)).toContain(secret);
          else expect(e.error).toBeInstanceOf(Error);
        }
      });
    }

    it("refuses when the store never answers, after lookupTimeoutMs, and aborts its signal", async () => {
      const store = storeOf(() => new Promise<StoreVerdict>(() => {}));
      const { server, events } = await serve(store, { lookupTimeoutMs: 100 });
      const error = await connectErrorOf(client(server).echo({ text: "hi" }));
      expect(error.code).toBe(Code.Unauthenticated);
      expect(error.rawMessage).toBe(unavailable);
      expect(server.log.calls).toEqual([]);
      expect(store.signals).toHaveLength(1);
      expect(store.signals[0]!.aborted).toBe(true);
      expect(String(store.signals[0]!.reason)).toContain("did not answer within 100 ms");
      expect(events[0]).toMatchObject({ kind: "refused", reason: "store_unavailable" });
    });

    it("admits when the store answers within lookupTimeoutMs, without aborting its signal", async () => {
      const store = storeOf(() => new Promise<StoreVerdict>((resolve) => setImmediate(() => resolve(admitted))));
      const { server } = await serve(store, { lookupTimeoutMs: 10_000 });
      expect((await client(server).echo({ text: "hi" })).text).toBe("hi");
      expect(store.signals[0]!.aborted).toBe(false);
    });

    it("admits on the next call once the store answers again (a failure is never cached)", async () => {
      let failing = true;
      const store = storeOf(() =>
        failing ? Promise.resolve({ kind: "error", error: new Error(secret) }) : Promise.resolve(admitted),
      );
      const { server } = await serve(store);
      const c = client(server);
      expect((await connectErrorOf(c.echo({ text: "1" }))).rawMessage).toBe(unavailable);
      expect((await connectErrorOf(c.echo({ text: "2" }))).rawMessage).toBe(unavailable);
      failing = false;
      expect((await c.echo({ text: "3" })).text).toBe("3");
      expect(store.signals).toHaveLength(3);
      expect(server.stats.sessions).toBe(1);
    });

    it("refuses a call that was waiting when the store failed, and one made after a late admission", async () => {
      // A late answer after the time-out must not be cached as an admission.
      let answer: ((v: StoreVerdict) => void) | undefined;
      const store = storeOf(
        () =>
          new Promise<StoreVerdict>((resolve) => {
            answer = resolve;
          }),
      );
      const { server } = await serve(store, { lookupTimeoutMs: 100 });
      const c = client(server);
      expect((await connectErrorOf(c.echo({ text: "1" }))).rawMessage).toBe(unavailable);
      answer?.(admitted);
      answer = undefined;
      const second = connectErrorOf(c.echo({ text: "2" }));
      expect((await second).rawMessage).toBe(unavailable);
      expect(store.signals).toHaveLength(2);
      expect(server.log.calls).toEqual([]);
    });
  });
}
