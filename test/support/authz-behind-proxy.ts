// The certgate side of the tests that put certgate authz behind a real
// proxy: a test PKI, a memory store holding alice (team "payments"), an authz
// server on a loopback port that can be stopped and started again, an HTTP
// upstream and the server certificate files a proxy configuration names.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createAuthzServer, type AuthzServer, type AuthzServerOptions } from "../../src/authz/authz-server.js";
import type { WritableCertificateStore } from "../../src/core/store.js";
import { createMemoryStore } from "../../src/stores/memory-store.js";
import { createTestPki, type TestPki } from "./harness.js";
import { freePort } from "./free-port.js";
import { startHttpUpstream, writeServerFiles, type Upstream } from "./proxies.js";

/** AuthzBehindProxy is what a proxy test starts its proxy in front of. */
export interface AuthzBehindProxy {
  readonly pki: TestPki;
  /** A temporary folder for the proxy's files, removed by `close()`. */
  readonly dir: string;
  readonly store: WritableCertificateStore;
  readonly authzPort: number;
  readonly upstream: Upstream;
  /** The server certificate and key files, under `dir`. */
  readonly files: { readonly cert: string; readonly key: string };
  /** stopAuthz closes the authz server, so that the proxy finds it down. */
  stopAuthz(): Promise<void>;
  /** startAuthz starts the authz server again on `authzPort`. */
  startAuthz(): Promise<void>;
  /** close stops the authz server and the upstream, closes the store and removes `dir`. */
  close(): Promise<void>;
}

/**
 * startAuthzBehindProxy starts the certgate side; `options` are the authz
 * server's but for its store. `name` names the temporary folder.
 */
export async function startAuthzBehindProxy(
  name: string,
  options: Omit<AuthzServerOptions, "store">,
): Promise<AuthzBehindProxy> {
  const pki = await createTestPki();
  const dir = await mkdtemp(join(tmpdir(), `certgate-${name}-`));
  const store = createMemoryStore();
  let authz: AuthzServer | undefined;
  let upstream: Upstream | undefined;
  const close = async () => {
    await authz?.close();
    await upstream?.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await store.put("alice", pki.alice.der, { labels: { team: "payments" } });
    const authzPort = await freePort();
    const startAuthz = async () => {
      authz = createAuthzServer({ ...options, store });
      await authz.listen(authzPort, "127.0.0.1");
    };
    await startAuthz();
    upstream = await startHttpUpstream();
    const files = await writeServerFiles(dir, pki.server);
    return {
      pki,
      dir,
      store,
      authzPort,
      upstream,
      files,
      stopAuthz: async () => authz?.close(),
      startAuthz,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
