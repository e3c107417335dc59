import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createClient, type Transport } from "@connectrpc/connect";
import { EchoService } from "../../../src/gen/certgate/example/v1/echo_pb.js";
import { parseCertificate, type Certificate } from "../../../src/core/certificate.js";
import { createClientCertInterceptor } from "../../../src/connect/client-cert-interceptor.js";
import type { WritableCertificateStore } from "../../../src/core/store.js";
import { createMemoryStore } from "../../../src/stores/memory-store.js";
import { createRemoteStore, type RemoteStore, type RemoteStoreOptions } from "../../../src/stores/remote-store.js";
import { startEchoServer, transportFor } from "../../support/harness.js";
import {
  createServicePki,
  serviceTransport,
  startService,
  type RunningService,
  type ServicePki,
} from "../../support/service-harness.js";

// A transport that counts VerifyCertificate calls.
function counting(transport: Transport): { transport: Transport; verifies: () => number } {
  let verifies = 0;
  return {
    transport: {
      unary(method, ...rest) {
        if (method.name === "VerifyCertificate") verifies++;
        return transport.unary(method, ...rest);
      },
      stream: (...args) => transport.stream(...args),
    },
    verifies: () => verifies,
  };
}

let pki: ServicePki;
let store: WritableCertificateStore;
let running: RunningService;
let alice: Certificate;
let bob: Certificate;
const signal = new AbortController().signal;

beforeAll(async () => {
  pki = await createServicePki();
  alice = parseCertificate(pki.alice.der);
  bob = parseCertificate(pki.bob.der);
  store = createMemoryStore();
  running = await startService(pki, store);
});
afterAll(async () => {
  await running.close();
  await store.close();
});

const opened: RemoteStore[] = [];
afterEach(async () => {
  while (opened.length > 0) await opened.pop()?.close();
  for (const { id } of await store.list({ limit: 100 })) await store.delete(id);
});

function lookupStore(options: Partial<RemoteStoreOptions> = {}) {
  const counter = counting(serviceTransport(running, pki, pki.reader));
  const remote = createRemoteStore({ transport: counter.transport, mode: "lookup", ...options });
  opened.push(remote);
  return { remote, verifies: counter.verifies };
}

describe('createRemoteStore({ mode: "lookup" })', () => {
  it("admits a stored certificate, with its id and labels, through an API server", async () => {
    await store.put("alice", pki.alice.der, { labels: { team: "payments" } });
    const { remote } = lookupStore();
    const verdict = await remote.lookup(alice, signal);
    expect(verdict).toMatchObject({ kind: "admitted", entry: { id: "alice", labels: { team: "payments" } } });
    const api = await startEchoServer({ pki, interceptors: [createClientCertInterceptor({ store: remote })] });
    try {
      const echo = createClient(EchoService, transportFor(api, pki, pki.alice));
      expect((await echo.echo({ text: "hi" })).text).toBe("hi");
    } finally {
      await api.close();
    }
  });

  it("refuses a certificate the service does not hold", async () => {
    const { remote } = lookupStore();
    expect(await remote.lookup(bob, signal)).toMatchObject({ kind: "refused", reason: "not_allowed" });
  });

  it("asks once for many concurrent lookups of one certificate", async () => {
    await store.put("alice", pki.alice.der);
    const { remote, verifies } = lookupStore();
    const verdicts = await Promise.all(Array.from({ length: 10 }, () => remote.lookup(alice, signal)));
    expect(verdicts.every((v) => v.kind === "admitted")).toBe(true);
    expect(verifies()).toBe(1);
    await Promise.all([remote.lookup(alice, signal), remote.lookup(bob, signal)]);
    expect(verifies()).toBe(2);
  });

  it("reuses an admission for cacheTtlMs, then asks again and hears of the deletion", async () => {
    let now = 1_000_000;
    await store.put("alice", pki.alice.der);
    const { remote, verifies } = lookupStore({ clock: () => now, cacheTtlMs: 10_000 });
    const first = await remote.lookup(alice, signal);
    expect(first).toMatchObject({ kind: "admitted", expiresAt: now + 10_000 });
    await store.delete("alice");
    now += 9_999;
    expect((await remote.lookup(alice, signal)).kind).toBe("admitted");
    expect(verifies()).toBe(1);
    now += 1;
    expect(await remote.lookup(alice, signal)).toMatchObject({ kind: "refused", reason: "not_allowed" });
    expect(verifies()).toBe(2);
  });

  it("reuses a refusal for negativeCacheTtlMs, then asks again and hears of the upload", async () => {
    let now = 1_000_000;
    const { remote, verifies } = lookupStore({ clock: () => now, negativeCacheTtlMs: 2_000 });
    expect(await remote.lookup(bob, signal)).toMatchObject({ kind: "refused", expiresAt: now + 2_000 });
    await store.put("bob", pki.bob.der);
    now += 1_999;
    expect((await remote.lookup(bob, signal)).kind).toBe("refused");
    expect(verifies()).toBe(1);
    now += 1;
    expect((await remote.lookup(bob, signal)).kind).toBe("admitted");
    expect(verifies()).toBe(2);
  });

  it("refuses to keep more than cacheMaxEntries answers: the oldest is asked again", async () => {
    const { remote, verifies } = lookupStore({ cacheMaxEntries: 1 });
    await remote.lookup(alice, signal);
    await remote.lookup(alice, signal);
    expect(verifies()).toBe(1);
    await remote.lookup(bob, signal);
    await remote.lookup(alice, signal);
    expect(verifies()).toBe(3);
  });

  it("refuses when the service cannot be reached, unless an answer expired less than maxStaleMs ago", async () => {
    let now = 1_000_000;
    const other = createMemoryStore();
    await other.put("alice", pki.alice.der);
    const service = await startService(pki, other);
    const make = (maxStaleMs: number) => {
      const remote = createRemoteStore({
        transport: serviceTransport(service, pki, pki.reader),
        mode: "lookup",
        clock: () => now,
        cacheTtlMs: 1_000,
        maxStaleMs,
      });
      opened.push(remote);
      return remote;
    };
    const strict = make(0);
    const lenient = make(60_000);
    expect((await strict.lookup(alice, signal)).kind).toBe("admitted");
    expect((await lenient.lookup(alice, signal)).kind).toBe("admitted");
    await service.close();
    await other.close();
    now += 2_000;
    expect((await strict.lookup(alice, signal)).kind).toBe("error");
    expect(await lenient.lookup(alice, signal)).toMatchObject({
      kind: "admitted",
      expiresAt: 1_000_000 + 1_000 + 60_000,
    });
    now += 60_000;
    expect((await lenient.lookup(alice, signal)).kind).toBe("error");
  });

  it("refuses every lookup after close()", async () => {
    await store.put("alice", pki.alice.der);
    const { remote } = lookupStore();
    expect((await remote.lookup(alice, signal)).kind).toBe("admitted");
    await remote.close();
    expect((await remote.lookup(alice, signal)).kind).toBe("error");
  });
});
