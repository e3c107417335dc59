// Calls that would change the store from a web page of another origin are
// refused before they are read, and recorded in the audit trail as the
// access gate's refusals are: the action, `foreign_origin`, the caller.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMemoryStore } from "../../src/stores/memory-store.js";
import { h2Call } from "../support/raw-requests.js";
import {
  createServicePki,
  sha256Of,
  startService,
  type RunningService,
  type ServicePki,
} from "../support/service-harness.js";

let pki: ServicePki;
beforeAll(async () => {
  pki = await createServicePki();
});

const running: RunningService[] = [];
afterAll(async () => {
  await Promise.all(running.map((r) => r.close()));
});

async function start() {
  const store = createMemoryStore();
  await store.put("alice", pki.alice.der);
  const service = await startService(pki, store);
  running.push(service);
  const authority = `127.0.0.1:${service.port}`;
  const call = (path: string, body: unknown, headers: Record<string, string>) =>
    h2Call(service.port, {
      authority,
      path: `/certgate.v1.CertificateStoreService/${path}`,
      body: JSON.stringify(body),
      cert: pki.admin.cert,
      key: pki.admin.key,
      headers,
    });
  return { store, service, authority, call };
}

describe("a call from a foreign origin", () => {
  it("is refused and recorded as refused, with the action, the reason and the caller's thumbprint", async () => {
    const { store, service: s, call } = await start();
    const foreign = { origin: "https://evil.example" };
    expect((await call("DeleteCertificate", { certificateId: "alice" }, foreign)).status).toBe(403);
    const batch = { requests: [{ certificateId: "bob", certificate: Buffer.from(pki.bob.der).toString("base64") }] };
    expect((await call("CreateCertificates", batch, { "sec-fetch-site": "cross-site" })).status).toBe(403);
    await s.close();
    const { events } = await store.audit!.list({ limit: 10 });
    expect(events.map((e) => [e.action, e.result, e.code, e.reason, e.actor.sha256])).toEqual([
      ["delete", "refused", "permission_denied", "foreign_origin", sha256Of(pki.admin)],
      ["create_batch", "refused", "permission_denied", "foreign_origin", sha256Of(pki.admin)],
    ]);
    expect((await store.list({ limit: 10 })).map((c) => c.id)).toEqual(["alice"]);
  });

  it("from the service's own origin is admitted and recorded as a change, with no refusal", async () => {
    const { store, service: s, authority, call } = await start();
    const own = { origin: `https://${authority}`, "sec-fetch-site": "same-origin" };
    expect((await call("DeleteCertificate", { certificateId: "alice" }, own)).status).toBe(200);
    await s.close();
    const { events } = await store.audit!.list({ limit: 10 });
    expect(events.map((e) => [e.action, e.result, e.actor.sha256])).toEqual([["delete", "ok", sha256Of(pki.admin)]]);
  });
});
