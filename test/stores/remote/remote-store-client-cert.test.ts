import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createRemoteStore, type DecisionEvent, type RemoteStoreOptions } from "../../../src/index.js";
import { issueDevCertificate, type IssuedCertificate } from "../../../src/dev-certificates.js";
import { createMemoryStore } from "../../../src/stores/memory-store.js";
import { certificateOf } from "../../support/harness.js";
import { createServicePki, sha256Of, startService, type ServicePki } from "../../support/service-harness.js";
import { atomicWrite, eventLog } from "../../support/tls-rotation.js";

let tmp: string;
let pki: ServicePki;
let renewed: IssuedCertificate;
const opened: (() => Promise<void> | void)[] = [];
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "certgate-remote-client-cert-"));
  pki = await createServicePki();
  renewed = await issueDevCertificate(pki.ca, { commonName: "reader (renewed)", usages: ["client"] });
});
afterEach(async () => {
  while (opened.length > 0) await opened.pop()?.();
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

describe("createRemoteStore({ clientCert })", () => {
  it("presents the reader certificate from files and a renewed one on its next connection", async () => {
    const store = createMemoryStore();
    await store.put("alice", pki.alice.der);
    const decisions: DecisionEvent[] = [];
    const running = await startService(pki, store, {
      access: {
        reader: { thumbprints: [sha256Of(pki.reader), sha256Of(renewed)] },
        onDecision: (event) => decisions.push(event),
      },
    });
    opened.push(() => running.close());
    const dir = join(tmp, "reader");
    await atomicWrite(dir, { "tls.crt": pki.reader.cert, "tls.key": pki.reader.key, "ca.crt": pki.ca.cert });
    const log = eventLog();
    const options: RemoteStoreOptions = {
      mode: "lookup",
      cacheTtlMs: 0,
      negativeCacheTtlMs: 0,
      clientCert: {
        baseUrl: running.url,
        cert: join(dir, "tls.crt"),
        key: join(dir, "tls.key"),
        ca: join(dir, "ca.crt"),
        filesOptions: { debounceMs: 20, onEvent: log.onEvent },
      },
    };
    const remote = createRemoteStore(options);
    opened.push(() => remote.close());
    const lookup = async () => (await remote.lookup(certificateOf(pki.alice), new AbortController().signal)).kind;

    expect(await lookup()).toBe("admitted");
    expect(decisions.at(-1)).toMatchObject({ kind: "admitted", thumbprint: sha256Of(pki.reader) });

    const reloaded = log.next("reloaded");
    await atomicWrite(dir, { "tls.crt": renewed.cert, "tls.key": renewed.key, "ca.crt": pki.ca.cert });
    await reloaded;
    expect(await lookup()).toBe("admitted");
    expect(decisions.at(-1)).toMatchObject({ kind: "admitted", thumbprint: sha256Of(renewed) });
  });

  it("refuses clientCert together with a transport, and without a URL", () => {
    const clientCert = { cert: "c", key: "k" } as never;
    expect(() => createRemoteStore({ clientCert, transport: {} as never })).toThrow(/not both/);
    expect(() => createRemoteStore({ clientCert: { ...(clientCert as object), baseUrls: [] } as never })).toThrow(
      /needs baseUrl/,
    );
  });
});
