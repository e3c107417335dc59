// docs/kubernetes/*.yaml, run as far as a test can without a cluster: the
// store Deployment's command line runs `certgate serve` (on a real
// PostgreSQL), the API server's environment runs
// examples/kubernetes-api-server.ts, and every mount is a folder laid out
// and updated exactly as the kubelet does it.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { CertificateStoreService } from "../../src/gen/certgate/v1/certificate_store_pb.js";
import { EchoService } from "../../src/gen/certgate/example/v1/echo_pb.js";
import { createDevCa, issueDevCertificate, type IssuedCertificate } from "../../src/dev-certificates.js";
import { killAll, repo, startServe, type Serve } from "../support/cli-harness.js";
import { printedPort, startExample, type ExampleProcess } from "../support/example-process.js";
import { waitFor } from "../support/harness.js";
import { createTestDatabase, postgresSkipReason, type TestDatabase } from "../support/postgres.js";
import { atomicWrite, presentedCertificate, serialOf } from "../support/tls-rotation.js";

const postgresSkip = await postgresSkipReason();
const docs = join(repo, "docs", "kubernetes");
let tmp: string;
let ca: IssuedCertificate;
const sessions: Http2SessionManager[] = [];
const processes: { stop(): Promise<unknown> }[] = [];

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "certgate-kubernetes-"));
  ca = await createDevCa({ commonName: "internal-ca" });
});
afterAll(async () => {
  for (const s of sessions) s.abort();
  await Promise.all(processes.map((p) => p.stop()));
  killAll();
  await rm(tmp, { recursive: true, force: true });
});

/** The parts of a manifest this test runs: a container's args and env, and its mounts. */
interface Container {
  args: string[];
  env: Record<string, string>;
  /** mountPath by volume name. */
  mounts: Record<string, string>;
  /** The Secret or ConfigMap of each volume. */
  volumes: Record<string, string>;
}

// Just enough YAML for these files: block lists of plain scalars under
// `args:`, and the flow mappings of env, volumeMounts and volumes.
async function container(file: string, document = 0): Promise<Container> {
  const text = (await readFile(join(docs, file), "utf8")).split(/^---$/m)[document]!;
  const args = (/^ +args:\n((?: +- .+\n)+)/m.exec(text)?.[1] ?? "")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => l.replace(/^ +- /, "").trim());
  const env: Record<string, string> = {};
  for (const m of text.matchAll(/- \{ name: (\w+), value: "?([^"}]+?)"? \}/g)) env[m[1]!] = m[2]!;
  const mounts: Record<string, string> = {};
  for (const m of text.matchAll(/- \{ name: (\w+), mountPath: (\S+),/g)) mounts[m[1]!] = m[2]!;
  const volumes: Record<string, string> = {};
  for (const m of text.matchAll(/- name: (\w+)\n +(?:secret: \{ secretName|configMap: \{ name): ([\w-]+) \}/g))
    volumes[m[1]!] = m[2]!;
  return { args, env, mounts, volumes };
}

// Each mountPath becomes a folder under tmp; paths in args and env follow.
function localize(
  c: Container,
  root: string,
): { args: string[]; env: Record<string, string>; dirs: Record<string, string> } {
  const dirs: Record<string, string> = {};
  for (const name of Object.keys(c.mounts)) dirs[name] = join(root, name);
  const local = (value: string) => {
    for (const [name, path] of Object.entries(c.mounts)) {
      if (value === path || value.startsWith(`${path}/`)) return dirs[name]! + value.slice(path.length);
    }
    return value;
  };
  return {
    args: c.args.map(local),
    env: Object.fromEntries(Object.entries(c.env).map(([k, v]) => [k, local(v)])),
    dirs,
  };
}

const serving = (dnsNames: string[], name: string) =>
  issueDevCertificate(ca, { commonName: name, dnsNames, ipAddresses: ["127.0.0.1"], usages: ["server"] });
const client = (name: string) => issueDevCertificate(ca, { commonName: name, usages: ["client"] });
const secret = (issued: IssuedCertificate) => ({ "tls.crt": issued.cert, "tls.key": issued.key, "ca.crt": ca.cert });

function transport(url: string, who: IssuedCertificate) {
  const session = new Http2SessionManager(url, {}, { cert: who.cert, key: who.key, ca: ca.cert });
  sessions.push(session);
  return createConnectTransport({ baseUrl: url, httpVersion: "2", sessionManager: session });
}
async function echo(url: string, who: IssuedCertificate): Promise<"admitted" | Code> {
  try {
    await createClient(EchoService, transport(url, who)).echo({ text: "hi" });
    return "admitted";
  } catch (error) {
    return ConnectError.from(error).code;
  }
}

describe("docs/kubernetes", () => {
  it("store-certificates.yaml names the Secrets the Deployments mount", async () => {
    const certificates = await readFile(join(docs, "store-certificates.yaml"), "utf8");
    const store = await container("store-deployment.yaml");
    const api = await container("api-deployment.yaml");
    expect(certificates).toContain(`secretName: ${store.volumes.tls}`);
    expect(certificates).toContain(`secretName: ${api.volumes.reader}`);
  });

  it.skipIf(postgresSkip !== undefined)(
    "store-deployment.yaml and api-deployment.yaml: the store on PostgreSQL and a mirroring API server follow their Secrets and ConfigMaps",
    async () => {
      const db: TestDatabase = await createTestDatabase();
      processes.push({ stop: () => db.drop() });
      const store = await container("store-deployment.yaml");
      const storeSide = localize(store, join(tmp, "store"));
      const dnsNames = [
        ...(await readFile(join(docs, "store-certificates.yaml"), "utf8")).matchAll(/- (certgate-store\.\S+)/g),
      ].map((m) => m[1]!);
      const [storeTls, renewedStoreTls, admin, reader, renewedReader, apiTls, renewedApiTls, alice, bob] =
        await Promise.all([
          serving(dnsNames, "certgate-store"),
          serving(dnsNames, "certgate-store (renewed)"),
          client("operator"),
          client("api-reader"),
          client("api-reader (renewed)"),
          serving(["api.api.svc"], "api"),
          serving(["api.api.svc"], "api (renewed)"),
          client("alice"),
          client("bob"),
        ]);
      await atomicWrite(storeSide.dirs.tls!, secret(storeTls));
      await atomicWrite(storeSide.dirs.admins!, { "operator.pem": admin.cert });
      // The reader's renewal must be on the list before cert-manager renews it.
      await atomicWrite(storeSide.dirs.readers!, {
        "api-reader.pem": reader.cert,
        "api-reader-next.pem": renewedReader.cert,
      });

      // The Deployment's command line, listening on a free local port.
      const listen = storeSide.args.indexOf("--listen");
      const args = storeSide.args.filter((_, i) => i !== listen && i !== listen + 1);
      expect(args[0]).toBe("serve");
      const serve: Serve = await startServe(args.slice(1), { CERTGATE_DATABASE_URL: db.url });
      processes.push(serve);
      // With --log-format json the "listening on" line is a JSON record.
      const storeUrl = /^https:\/\/[^\s"]+/.exec(serve.url)![0];
      const storeAdmin = createClient(CertificateStoreService, transport(storeUrl, admin));
      await storeAdmin.createCertificate({ certificate: alice.der, certificateId: "alice" });

      const api = await container("api-deployment.yaml");
      const apiSide = localize(api, join(tmp, "api"));
      await atomicWrite(apiSide.dirs.tls!, secret(apiTls));
      await atomicWrite(apiSide.dirs.reader!, secret(reader));
      const apiServer: ExampleProcess = await startExample("kubernetes-api-server", {
        cwd: tmp,
        env: { ...apiSide.env, CERTGATE_STORE: storeUrl, PORT: "0" },
      });
      processes.push(apiServer);
      const apiUrl = `https://127.0.0.1:${printedPort(apiServer.output().stdout)}`;
      expect(await echo(apiUrl, alice)).toBe("admitted");
      expect(await echo(apiUrl, bob)).toBe(Code.Unauthenticated);

      // cert-manager renews everything; the kubelet swaps each Secret.
      await atomicWrite(storeSide.dirs.tls!, secret(renewedStoreTls));
      await atomicWrite(apiSide.dirs.tls!, secret(renewedApiTls));
      await atomicWrite(apiSide.dirs.reader!, secret(renewedReader));
      await waitFor(() => /reloaded TLS certificate/.test(serve.output().stderr), "the store to reload");
      await waitFor(
        () => (apiServer.output().stderr.match(/reloaded TLS certificate/g) ?? []).length === 2,
        "the API server to reload both",
      );
      expect((await presentedCertificate(Number(new URL(storeUrl).port))).serialNumber).toBe(serialOf(renewedStoreTls));
      expect((await presentedCertificate(Number(new URL(apiUrl).port))).serialNumber).toBe(serialOf(renewedApiTls));

      // Still mirroring: a deletion reaches the API server.
      await storeAdmin.deleteCertificate({ certificateId: "alice" });
      await waitFor(
        async () => (await echo(apiUrl, alice)) === Code.Unauthenticated,
        "the deletion to reach the API server",
      );
      // A new operator in the admins ConfigMap may upload, on a new connection.
      const admin2 = await client("operator 2");
      await atomicWrite(storeSide.dirs.admins!, { "operator.pem": admin.cert, "operator-2.pem": admin2.cert });
      const asAdmin2 = createClient(CertificateStoreService, transport(storeUrl, admin2));
      await waitFor(async () => {
        try {
          await asAdmin2.createCertificate({ certificate: bob.der, certificateId: "bob" });
          return true;
        } catch {
          return false;
        }
      }, "the new admin to be admitted");
      await waitFor(async () => (await echo(apiUrl, bob)) === "admitted", "bob to be admitted");
    },
    120_000,
  );

  it("folder-store.yaml: the API server admits exactly the files of its ConfigMap, across the kubelet's swap", async () => {
    const api = await container("folder-store.yaml", 1);
    const side = localize(api, join(tmp, "folder"));
    const [tls, alice, bob] = await Promise.all([serving(["api.api.svc"], "api"), client("alice"), client("bob")]);
    await atomicWrite(side.dirs.tls!, secret(tls));
    await atomicWrite(side.dirs.clients!, { "alice.pem": alice.cert });
    const apiServer = await startExample("kubernetes-api-server", { cwd: tmp, env: { ...side.env, PORT: "0" } });
    processes.push(apiServer);
    const url = `https://127.0.0.1:${printedPort(apiServer.output().stdout)}`;
    expect(await echo(url, alice)).toBe("admitted");
    expect(await echo(url, bob)).toBe(Code.Unauthenticated);
    await atomicWrite(side.dirs.clients!, { "bob.pem": bob.cert });
    await waitFor(async () => (await echo(url, bob)) === "admitted", "the swap to admit bob");
    expect(await echo(url, alice)).toBe(Code.Unauthenticated);
  }, 60_000);
});
