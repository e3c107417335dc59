// `certgate authz` as a process: its flags, its answers, its log.
import { createHash } from "node:crypto";
import { mkdtemp, rm, unlink, writeFile } from "node:fs/promises";
import * as http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { issueDevCertificate, type IssuedCertificate } from "../../src/dev-certificates.js";
import {
  createCliFixture,
  expectFailure,
  killAll,
  run,
  runHere,
  spawnCli,
  startServe,
  type CliFixture,
  type Serve,
} from "../support/cli-harness.js";
import { createTestPki, waitFor, type TestPki } from "../support/harness.js";
import { presentedCertificate, serialOf } from "../support/tls-rotation.js";
import {
  createServicePki,
  sha256Of,
  startService,
  type RunningService,
  type ServicePki,
} from "../support/service-harness.js";
import { createMemoryStore } from "../../src/stores/memory-store.js";

let pki: TestPki;
let carol: IssuedCertificate;
let dir: string;
const sha256 = (c: IssuedCertificate) => createHash("sha256").update(c.der).digest("hex");
const base = ["authz", "--trusted-proxy", "127.0.0.1", "--forwarded", "nginx:X-Client-Cert"];

function ask(port: number, client: IssuedCertificate | undefined, localAddress = "127.0.0.1") {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders }>((resolve, reject) => {
    http
      .get(
        {
          host: "127.0.0.1",
          port,
          path: "/auth",
          localAddress,
          agent: false,
          headers: client === undefined ? {} : { "x-client-cert": encodeURIComponent(client.cert) },
        },
        (res) => {
          res.resume();
          resolve({ status: res.statusCode ?? 0, headers: res.headers });
        },
      )
      .on("error", reject);
  });
}

beforeAll(async () => {
  pki = await createTestPki();
  carol = await issueDevCertificate(pki.ca, { commonName: "carol", usages: ["client"] });
  dir = await mkdtemp(join(tmpdir(), "certgate-authz-cli-"));
  await writeFile(join(dir, "alice.pem"), pki.alice.cert);
});
afterAll(async () => {
  killAll();
  await rm(dir, { recursive: true, force: true });
});

describe("certgate authz: command line", () => {
  it("needs --trusted-proxy", async () => {
    expectFailure(
      await runHere(["authz", "--forwarded", "xfcc", "--thumbprint", sha256(pki.alice)]),
      2,
      "certgate: missing --trusted-proxy CIDR: name the proxies' addresses (see certgate authz --help)",
    );
  });
  it("needs the header of --forwarded nginx, and a known format", async () => {
    expectFailure(
      await runHere(["authz", "--trusted-proxy", "127.0.0.1", "--forwarded", "nginx", "--data-dir", dir]),
      2,
      /--forwarded nginx: nginx needs the header name/,
    );
    expectFailure(
      await runHere(["authz", "--trusted-proxy", "127.0.0.1", "--forwarded", "traefik", "--data-dir", dir]),
      2,
      /unknown format traefik/,
    );
  });
  it("needs somewhere to find admitted certificates", async () => {
    expectFailure(await runHere(base), 2, /no certificate would be admitted/);
  });
  it("refuses plaintext off loopback", async () => {
    expectFailure(
      await runHere([...base, "--data-dir", dir, "--listen", "0.0.0.0:8445"]),
      2,
      /plaintext is for a loopback address only/,
    );
  });
  it("refuses a bad CIDR and a bad policy file, naming the flag", async () => {
    expectFailure(
      await runHere(["authz", "--trusted-proxy", "10.0.0.0/99", "--forwarded", "xfcc", "--data-dir", dir]),
      1,
      /^certgate: --trusted-proxy: invalid CIDR/,
    );
    const policy = join(dir, "..", `${dir.split("/").pop()}-policy.json`);
    await writeFile(policy, JSON.stringify({ rulez: [] }));
    try {
      expectFailure(await runHere([...base, "--data-dir", dir, "--policy", policy]), 1, /unknown option "rulez"/);
      await writeFile(policy, JSON.stringify({ rules: [{ procedure: "not a procedure" }] }));
      expectFailure(
        await runHere([...base, "--data-dir", dir, "--policy", policy]),
        1,
        /^certgate: --policy: rules\[0\]/,
      );
    } finally {
      await unlink(policy);
    }
  });
  it("is listed in certgate --help", async () => {
    expect((await runHere(["--help"])).stdout).toMatch(/authz\s+Answer nginx, Caddy, Traefik and Envoy/);
  });
});

// Starts `certgate authz` with `args` and resolves with its port and a stop.
async function startAuthz(args: string[]) {
  const child = spawnCli([...base, "--listen", "127.0.0.1:0", ...args]);
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  await waitFor(
    () => /listening on https?:\/\/127\.0\.0\.1:\d+/.test(stdout) || child.exitCode !== null,
    "authz to listen",
    30_000,
  );
  const port = Number(/listening on https?:\/\/127\.0\.0\.1:(\d+)/.exec(stdout)?.[1]);
  if (!(port > 0)) throw new Error(`certgate authz did not start:\n${stderr}`);
  return {
    port,
    child,
    output: () => ({ stdout, stderr }),
    stop() {
      child.kill("SIGTERM");
      return exit;
    },
  };
}

describe("certgate authz --store: the store service, mirrored", () => {
  let fixture: CliFixture;
  let serve: Serve | undefined;
  afterAll(async () => {
    await serve?.stop();
    if (fixture !== undefined) await rm(fixture.tmp, { recursive: true, force: true });
  });

  it("admits what the store holds, from two replica URLs, and refuses once it is deleted there", async () => {
    fixture = await createCliFixture();
    const f = fixture.files;
    serve = await startServe([
      "--data-dir",
      join(fixture.tmp, "store"),
      "--tls-cert",
      f["server.pem"]!,
      "--tls-key",
      f["server-key.pem"]!,
      "--admin",
      sha256(fixture.admin),
      "--reader",
      sha256(fixture.reader),
    ]);
    const admin = ["--store", serve.url, "--cert", f["admin.pem"]!, "--key", f["admin-key.pem"]!, "--ca", f["ca.pem"]!];
    const uploaded = await run(["upload", f["alice.pem"]!, "--id", "alice", ...admin]);
    expect(uploaded.code, uploaded.stderr).toBe(0);
    const authz = await startAuthz([
      "--store",
      serve.url,
      "--store",
      serve.url.replace("127.0.0.1", "localhost"),
      "--cert",
      f["reader.pem"]!,
      "--key",
      f["reader-key.pem"]!,
      "--ca",
      f["ca.pem"]!,
    ]);
    try {
      await waitFor(async () => (await ask(authz.port, fixture.pki.alice)).status === 200, "the mirror to sync");
      expect((await ask(authz.port, fixture.pki.alice)).headers["certgate-certificate-id"]).toBe("alice");
      expect((await ask(authz.port, fixture.pki.bob)).status).toBe(401);
      const deleted = await run(["delete", "alice", ...admin]);
      expect(deleted.code, deleted.stderr).toBe(0);
      await waitFor(
        async () => (await ask(authz.port, fixture.pki.alice)).status === 401,
        "the deletion to reach authz",
      );
    } finally {
      expect(await authz.stop()).toBe(0);
    }
  }, 90_000);
});

describe("certgate authz: running", () => {
  it("admits from the data folder and pinned thumbprints, refuses and logs the rest, sees deletions, stops on SIGTERM", async () => {
    const authz = await startAuthz(["--data-dir", dir, "--thumbprint", sha256(pki.bob), "--log-format", "json"]);
    const port = authz.port;
    const stderr = () => authz.output().stderr;
    const alice = await ask(port, pki.alice);
    expect(alice.status).toBe(200);
    expect(alice.headers["certgate-subject"]).toBe("CN=alice");
    expect((await ask(port, pki.bob)).status).toBe(200);
    expect((await ask(port, carol)).status).toBe(401);
    expect((await ask(port, pki.alice, "127.0.0.2")).status).toBe(403);
    await waitFor(() => /untrusted_proxy/.test(stderr()) && /not_allowed/.test(stderr()), "the refusals in the log");
    const records = stderr()
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records).toContainEqual(
      expect.objectContaining({
        level: "warn",
        reason: "not_allowed",
        sha256: sha256(carol).toUpperCase(),
        address: "127.0.0.1",
      }),
    );
    expect(records).toContainEqual(
      expect.objectContaining({ level: "warn", reason: "untrusted_proxy", address: "127.0.0.2" }),
    );

    await unlink(join(dir, "alice.pem"));
    await waitFor(async () => (await ask(port, pki.alice)).status === 401, "the deletion to reach authz");
    await writeFile(join(dir, "alice.pem"), pki.alice.cert);

    expect(await authz.stop()).toBe(0);
  }, 60_000);
});

describe("certgate authz --tls-cert --tls-key", () => {
  it("reloads renewed TLS files on SIGHUP for new connections, and keeps the set in use when the key does not match", async () => {
    const serverCert = (name: string) =>
      issueDevCertificate(pki.ca, {
        commonName: name,
        dnsNames: ["localhost"],
        ipAddresses: ["127.0.0.1"],
        usages: ["server"],
      });
    const [renewed, mismatched] = await Promise.all([serverCert("authz B"), serverCert("authz C")]);
    const cert = join(dir, "authz.pem");
    const key = join(dir, "authz-key.pem");
    await writeFile(cert, pki.server.cert);
    await writeFile(key, pki.server.key);
    const authz = await startAuthz(["--tls-cert", cert, "--tls-key", key, "--thumbprint", sha256(pki.alice)]);
    const lines = (pattern: RegExp) =>
      authz
        .output()
        .stderr.split("\n")
        .filter((l) => pattern.test(l));
    try {
      expect((await presentedCertificate(authz.port)).serialNumber).toBe(serialOf(pki.server));

      await writeFile(cert, renewed.cert);
      await writeFile(key, renewed.key);
      authz.child.kill("SIGHUP");
      await waitFor(
        async () => (await presentedCertificate(authz.port)).serialNumber === serialOf(renewed),
        "the renewed certificate on a new connection",
      );
      expect(lines(/SIGHUP: reading the TLS files/)).toEqual([
        "certgate authz: SIGHUP: reading the TLS files (--tls-cert, --tls-key)",
      ]);
      expect(lines(/reloaded TLS certificate/).length).toBeGreaterThan(0);

      // A new certificate whose key has not been replaced.
      await writeFile(cert, mismatched.cert);
      authz.child.kill("SIGHUP");
      await waitFor(() => lines(/refused the files/).length > 0, "the refused set");
      expect(lines(/refused the files/)[0]).toMatch(/^certgate authz: kept the TLS certificate in use/);
      expect((await presentedCertificate(authz.port)).serialNumber).toBe(serialOf(renewed));
    } finally {
      expect(await authz.stop()).toBe(0);
    }
  }, 60_000);
});

describe("certgate authz --store --cert --key", () => {
  // A store service on a memory store holding alice, admitting `reader`,
  // and authz mirroring it with the reader certificate's files.
  async function storeAndAuthz(name: string) {
    const storePki = await createServicePki();
    const store = createMemoryStore();
    await store.put("alice", storePki.alice.der, { labels: {} });
    const service = await startService(storePki, store, readers(storePki, storePki.reader));
    const [cert, key, ca] = ["cert", "key", "ca"].map((f) => join(dir, `${name}-${f}.pem`)) as [string, string, string];
    await Promise.all([
      writeFile(cert, storePki.reader.cert),
      writeFile(key, storePki.reader.key),
      writeFile(ca, storePki.ca.cert),
    ]);
    const authz = await startAuthz(["--store", service.url, "--cert", cert, "--key", key, "--ca", ca]);
    await waitFor(async () => (await ask(authz.port, storePki.alice)).status === 200, "the mirror to sync");
    return { storePki, store, service, authz, cert, key };
  }
  const readers = (storePki: ServicePki, reader: IssuedCertificate) => ({
    access: {
      admin: { thumbprints: [sha256Of(storePki.admin)] },
      reader: { thumbprints: [sha256Of(reader)] },
    },
  });

  it("presents its renewed client certificate on the next connection to the store, read on SIGHUP", async () => {
    const { storePki, store, service, authz, cert, key } = await storeAndAuthz("renewed");
    let restarted: RunningService | undefined;
    try {
      await writeFile(cert, storePki.stranger.cert);
      await writeFile(key, storePki.stranger.key);
      authz.child.kill("SIGHUP");
      await waitFor(
        () => /reloaded TLS certificate --cert /.test(authz.output().stderr),
        "the renewed client certificate",
      );

      // The store service, restarted, admits only the renewed certificate.
      await service.close();
      await store.put("bob", storePki.bob.der, { labels: {} });
      restarted = await startService(storePki, store, readers(storePki, storePki.stranger), service.port);
      await waitFor(
        async () => (await ask(authz.port, storePki.bob)).status === 200,
        "the mirror to sync again with the renewed certificate",
        30_000,
      );
    } finally {
      expect(await authz.stop()).toBe(0);
      await (restarted ?? service).close();
    }
  }, 90_000);

  it("without a renewal, is refused by a store that admits only another certificate, and stays unsynced", async () => {
    const { storePki, store, service, authz } = await storeAndAuthz("kept");
    let restarted: RunningService | undefined;
    try {
      await service.close();
      await store.put("bob", storePki.bob.der, { labels: {} });
      restarted = await startService(storePki, store, readers(storePki, storePki.stranger), service.port);
      await waitFor(() => /unreachable/.test(authz.output().stderr), "the refused reconnection", 30_000);
      expect((await ask(authz.port, storePki.bob)).status).toBe(401);
    } finally {
      expect(await authz.stop()).toBe(0);
      await (restarted ?? service).close();
    }
  }, 90_000);
});
