import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { EchoService } from "../../../src/gen/certgate/example/v1/echo_pb.js";
import { createClientCertInterceptor, parseCertificate } from "../../../src/index.js";
import { createDevCa, issueDevCertificate, type IssuedCertificate } from "../../../src/dev-certificates.js";
import {
  createDirectoryStore,
  type DirectoryStore,
  type DirectoryStoreOptions,
} from "../../../src/stores/directory-store.js";
import type { DecisionEvent } from "../../../src/core/decision-report.js";
import {
  createTestPki,
  startEchoServer,
  transportFor,
  waitFor,
  type Protocol,
  type TestPki,
  type TestServer,
} from "../../support/harness.js";

// End to end: a real TLS server with the interceptor over a folder store,
// real connect-node clients (Connect and gRPC), files changed under an open
// HTTP/2 connection.

let pki: TestPki;
let carol: IssuedCertificate; // issued by the test CA, in no folder
let expired: IssuedCertificate; // issued by the test CA, validity over
let foreignCa: IssuedCertificate; // another CA with the test CA's very subject
let mallory: IssuedCertificate; // "alice" issued by the foreign CA

beforeAll(async () => {
  pki = await createTestPki();
  carol = await issueDevCertificate(pki.ca, { commonName: "carol", usages: ["client"] });
  expired = await issueDevCertificate(pki.ca, {
    commonName: "expired",
    usages: ["client"],
    notBefore: new Date(Date.now() - 2 * 365 * 86400_000),
    notAfter: new Date(Date.now() - 86400_000),
  });
  foreignCa = await createDevCa({ commonName: "certgate test CA" });
  mallory = await issueDevCertificate(foreignCa, { commonName: "alice", usages: ["client"] });
});

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempFolder(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "certgate-dir-"));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

interface Setup {
  store: DirectoryStore;
  server: TestServer;
  decisions: DecisionEvent[];
  /** TLS connections the server accepted so far. */
  connections(): number;
  /** One client (and so one HTTP/2 connection) per certificate and protocol, reused by every call. */
  call(client: IssuedCertificate, protocol?: Protocol): Promise<"admitted" | Code>;
}

// No periodic rescan unless a test asks: reloads must come from fs.watch.
async function setup(options: DirectoryStoreOptions): Promise<Setup> {
  const store = await createDirectoryStore({ onProblem: () => {}, rescanIntervalMs: 0, ...options });
  cleanups.push(() => store.close());
  const decisions: DecisionEvent[] = [];
  const server = await startEchoServer({
    pki,
    interceptors: [createClientCertInterceptor({ store, onDecision: (e) => decisions.push(e) })],
  });
  cleanups.push(() => server.close());
  let connections = 0;
  server.server.on("secureConnection", () => connections++);
  const transports = new Map<string, Transport>();
  return {
    store,
    server,
    decisions,
    connections: () => connections,
    async call(client, protocol = "connect") {
      const key = `${client.x509.subject}/${client.x509.serialNumber}/${protocol}`;
      let transport = transports.get(key);
      if (transport === undefined) {
        transport = transportFor(server, pki, client, protocol);
        transports.set(key, transport);
      }
      try {
        await createClient(EchoService, transport).echo({ text: "hi" });
        return "admitted";
      } catch (error) {
        return ConnectError.from(error).code;
      }
    },
  };
}

async function admits(store: DirectoryStore, client: IssuedCertificate): Promise<boolean> {
  return (await store.lookup(parseCertificate(client.cert), new AbortController().signal)).kind === "admitted";
}

function write(dir: string, name: string, content: string | Uint8Array): void {
  fs.writeFileSync(path.join(dir, name), content);
}

// Replaces a file the way careful tools do: a temporary file renamed into place.
function replace(dir: string, name: string, content: string): void {
  const temporary = path.join(dir, `.${name}.swp`);
  fs.writeFileSync(temporary, content);
  fs.renameSync(temporary, path.join(dir, name));
}

describe("createDirectoryStore()", () => {
  it("admits a client whose certificate file is in the folder, over Connect and gRPC", async () => {
    const dir = tempFolder();
    write(dir, "alice.pem", pki.alice.cert);
    const s = await setup({ directory: dir });
    expect(await s.call(pki.alice, "connect")).toBe("admitted");
    expect(await s.call(pki.alice, "grpc")).toBe("admitted");
    expect(s.decisions[0]?.entry).toEqual({ id: "alice", thumbprint: parseCertificate(pki.alice.cert).sha256 });
    expect(s.server.log.calls).toEqual(["echo", "echo"]);
  });

  it("refuses a client whose certificate is not in the folder, over Connect and gRPC", async () => {
    const dir = tempFolder();
    write(dir, "alice.pem", pki.alice.cert);
    const s = await setup({ directory: dir });
    expect(await s.call(pki.bob, "connect")).toBe(Code.Unauthenticated);
    expect(await s.call(pki.bob, "grpc")).toBe(Code.Unauthenticated);
    expect(s.server.log.calls).toEqual([]);
  });

  it("admits, on an open HTTP/2 connection, a certificate added to the folder", async () => {
    const dir = tempFolder();
    const s = await setup({ directory: dir });
    expect(await s.call(pki.bob)).toBe(Code.Unauthenticated);
    const opened = s.connections();
    write(dir, "bob.pem", pki.bob.cert);
    await waitFor(() => admits(s.store, pki.bob), "bob.pem to load");
    expect(await s.call(pki.bob)).toBe("admitted");
    expect(s.connections()).toBe(opened);
  });

  it("refuses, on an open HTTP/2 connection, a certificate whose file was removed", async () => {
    const dir = tempFolder();
    write(dir, "alice.pem", pki.alice.cert);
    const s = await setup({ directory: dir });
    expect(await s.call(pki.alice, "grpc")).toBe("admitted");
    const opened = s.connections();
    fs.rmSync(path.join(dir, "alice.pem"));
    await waitFor(async () => !(await admits(s.store, pki.alice)), "alice.pem to unload");
    expect(await s.call(pki.alice, "grpc")).toBe(Code.Unauthenticated);
    expect(s.connections()).toBe(opened);
  });

  it("admits the new certificate and refuses the old one when a file is replaced", async () => {
    const dir = tempFolder();
    write(dir, "client.pem", pki.alice.cert);
    const s = await setup({ directory: dir });
    expect(await s.call(pki.alice)).toBe("admitted");
    expect(await s.call(pki.bob)).toBe(Code.Unauthenticated);
    replace(dir, "client.pem", pki.bob.cert);
    await waitFor(() => admits(s.store, pki.bob), "client.pem to be replaced");
    expect(await s.call(pki.bob)).toBe("admitted");
    expect(await s.call(pki.alice)).toBe(Code.Unauthenticated);
    // Written in place (truncate, then write) it ends the same way.
    write(dir, "client.pem", pki.alice.cert);
    await waitFor(() => admits(s.store, pki.alice), "client.pem to be rewritten");
    expect(await s.call(pki.alice)).toBe("admitted");
    expect(await s.call(pki.bob)).toBe(Code.Unauthenticated);
  });

  it("admits under the new id a file renamed to another certificate name", async () => {
    const dir = tempFolder();
    write(dir, "alice.pem", pki.alice.cert);
    const s = await setup({ directory: dir });
    expect(await s.call(pki.alice)).toBe("admitted");
    const before = s.store.revision;
    fs.renameSync(path.join(dir, "alice.pem"), path.join(dir, "alice-2024.crt"));
    await waitFor(() => s.store.revision > before && s.store.stats().files === 1, "the rename");
    expect(await s.call(pki.alice)).toBe("admitted");
    expect(s.decisions.at(-1)?.entry?.id).toBe("alice-2024");
  });

  it("refuses a certificate whose file was renamed to a name that is not a certificate's", async () => {
    const dir = tempFolder();
    write(dir, "alice.pem", pki.alice.cert);
    const s = await setup({ directory: dir });
    expect(await s.call(pki.alice)).toBe("admitted");
    fs.renameSync(path.join(dir, "alice.pem"), path.join(dir, "alice.pem.bak"));
    await waitFor(async () => !(await admits(s.store, pki.alice)), "the rename");
    expect(await s.call(pki.alice)).toBe(Code.Unauthenticated);
  });

  it("follows a Kubernetes ..data symlink swap: admits the new set and refuses the old one", async () => {
    // The layout of a mounted Secret: files are symlinks through ..data,
    // which is swapped atomically to a new timestamped folder.
    const dir = tempFolder();
    fs.mkdirSync(path.join(dir, "..2024_01_01_00_00_00.1"));
    write(dir, "..2024_01_01_00_00_00.1/client.pem", pki.alice.cert);
    fs.symlinkSync("..2024_01_01_00_00_00.1", path.join(dir, "..data"));
    fs.symlinkSync("..data/client.pem", path.join(dir, "client.pem"));
    const s = await setup({ directory: dir });
    expect(await s.call(pki.alice)).toBe("admitted");
    expect(await s.call(pki.bob)).toBe(Code.Unauthenticated);
    const opened = s.connections();
    fs.mkdirSync(path.join(dir, "..2024_01_02_00_00_00.2"));
    write(dir, "..2024_01_02_00_00_00.2/client.pem", pki.bob.cert);
    fs.symlinkSync("..2024_01_02_00_00_00.2", path.join(dir, "..data_tmp"));
    fs.renameSync(path.join(dir, "..data_tmp"), path.join(dir, "..data"));
    fs.rmSync(path.join(dir, "..2024_01_01_00_00_00.1"), { recursive: true });
    await waitFor(() => admits(s.store, pki.bob), "the ..data swap");
    expect(await s.call(pki.bob)).toBe("admitted");
    expect(await s.call(pki.alice)).toBe(Code.Unauthenticated);
    expect(s.connections()).toBe(opened);
  });

  it("keeps admitting the last good set when the folder is removed, and reports it", async () => {
    const dir = tempFolder();
    write(dir, "alice.pem", pki.alice.cert);
    const problems: string[] = [];
    const s = await setup({ directory: dir, onProblem: (p) => problems.push(p.code), rescanIntervalMs: 50 });
    expect(await s.call(pki.alice)).toBe("admitted");
    fs.rmSync(dir, { recursive: true });
    await waitFor(() => problems.includes("folder_unavailable"), "the folder problem");
    expect(s.store.problems().map((p) => p.code)).toContain("folder_unavailable");
    expect(await s.call(pki.alice)).toBe("admitted");
  });

  it("refuses what the folder no longer holds once a removed folder comes back", async () => {
    const dir = tempFolder();
    write(dir, "alice.pem", pki.alice.cert);
    const s = await setup({ directory: dir, rescanIntervalMs: 50 });
    fs.rmSync(dir, { recursive: true });
    await waitFor(() => s.store.problems().some((p) => p.code === "folder_unavailable"), "the folder problem");
    fs.mkdirSync(dir);
    write(dir, "bob.pem", pki.bob.cert);
    await waitFor(() => admits(s.store, pki.bob), "the folder to come back");
    expect(await s.call(pki.alice)).toBe(Code.Unauthenticated);
    expect(await s.call(pki.bob)).toBe("admitted");
    expect(s.store.problems()).toEqual([]);
  });

  it("admits a certificate added to the folder without fs.watch, through the periodic rescan", async () => {
    const dir = tempFolder();
    const s = await setup({ directory: dir, watch: false, rescanIntervalMs: 50 });
    expect(await s.call(pki.bob)).toBe(Code.Unauthenticated);
    write(dir, "bob.pem", pki.bob.cert);
    await waitFor(() => admits(s.store, pki.bob), "the rescan");
    expect(await s.call(pki.bob)).toBe("admitted");
  });

  it("refuses a certificate removed from the folder without fs.watch, through the periodic rescan", async () => {
    const dir = tempFolder();
    write(dir, "bob.pem", pki.bob.cert);
    const s = await setup({ directory: dir, watch: false, rescanIntervalMs: 50 });
    expect(await s.call(pki.bob)).toBe("admitted");
    fs.rmSync(path.join(dir, "bob.pem"));
    await waitFor(async () => !(await admits(s.store, pki.bob)), "the rescan");
    expect(await s.call(pki.bob)).toBe(Code.Unauthenticated);
  });

  it("rejects at start when the folder does not exist, naming it", async () => {
    const missing = path.join(tempFolder(), "no-such-folder");
    await expect(createDirectoryStore({ directory: missing })).rejects.toThrow(
      `certgate: the certificate folder ${missing} (options.directory) does not exist`,
    );
    await expect(createDirectoryStore({ directory: tempFolder(), caDirectory: missing })).rejects.toThrow(missing);
  });

  it("rejects at start a configuration mistake, naming it", async () => {
    const dir = tempFolder();
    await expect(createDirectoryStore({ directory: dir, caDirectory: dir })).rejects.toThrow(
      /caDirectory must not be the certificate folder itself/,
    );
    await expect(createDirectoryStore({ directory: dir, maxFileBytes: 0 })).rejects.toThrow(
      /options.maxFileBytes must be an integer of at least 1/,
    );
  });
});

describe("createDirectoryStore({ caDirectory })", () => {
  async function caSetup(): Promise<Setup & { leaves: string; cas: string }> {
    const leaves = tempFolder();
    const cas = path.join(leaves, "ca");
    fs.mkdirSync(cas);
    write(cas, "test-ca.pem", pki.ca.cert);
    return { ...(await setup({ directory: leaves, caDirectory: cas })), leaves, cas };
  }

  it("admits a leaf certificate issued by a CA in the CA folder, over Connect and gRPC", async () => {
    const s = await caSetup();
    expect(await s.call(pki.alice, "connect")).toBe("admitted");
    expect(await s.call(carol, "grpc")).toBe("admitted");
    expect(s.decisions[0]?.entry).toEqual({ id: "ca/test-ca" });
  });

  it("refuses a certificate with the same subject issued by another CA with the same name", async () => {
    const s = await caSetup();
    expect(mallory.x509.subject).toBe(pki.alice.x509.subject);
    expect(mallory.x509.issuer).toBe(pki.alice.x509.issuer);
    expect(await s.call(mallory, "connect")).toBe(Code.Unauthenticated);
    expect(await s.call(mallory, "grpc")).toBe(Code.Unauthenticated);
  });

  it("refuses an expired leaf certificate from the CA, in the store as well as in the decision core", async () => {
    const s = await caSetup();
    expect(await s.call(expired)).toBe(Code.Unauthenticated);
    const verdict = await s.store.lookup(parseCertificate(expired.cert), new AbortController().signal);
    expect(verdict).toMatchObject({ kind: "refused", reason: "expired" });
  });

  it("refuses a leaf once its CA certificate is removed from the CA folder", async () => {
    const s = await caSetup();
    expect(await s.call(pki.alice)).toBe("admitted");
    fs.rmSync(path.join(s.cas, "test-ca.pem"));
    await waitFor(async () => !(await admits(s.store, pki.alice)), "the CA to unload");
    expect(await s.call(pki.alice)).toBe(Code.Unauthenticated);
  });

  it("admits a CA certificate among the leaf certificates only by its own thumbprint", async () => {
    const dir = tempFolder();
    write(dir, "test-ca.pem", pki.ca.cert);
    const s = await setup({ directory: dir });
    expect(await s.call(pki.ca)).toBe("admitted");
  });

  it("refuses the certificates issued by a CA certificate placed among the leaf certificates", async () => {
    const dir = tempFolder();
    write(dir, "test-ca.pem", pki.ca.cert);
    const s = await setup({ directory: dir });
    expect(await s.call(pki.alice)).toBe(Code.Unauthenticated);
    expect(await s.call(carol, "grpc")).toBe(Code.Unauthenticated);
  });

  it("refuses leaves signed by a certificate in the CA folder that is not a CA, and reports it", async () => {
    const notCa = await issueDevCertificate(pki.ca, { commonName: "not a CA" });
    const underling = await issueDevCertificate(notCa, { commonName: "underling", usages: ["client"] });
    const leaves = tempFolder();
    const cas = tempFolder();
    write(cas, "not-a-ca.pem", notCa.cert);
    const s = await setup({ directory: leaves, caDirectory: cas });
    expect(s.store.problems()).toMatchObject([{ file: "not-a-ca.pem", code: "not_a_ca" }]);
    expect(s.store.stats().issuers).toBe(0);
    expect(await s.call(underling)).toBe(Code.Unauthenticated);
  });

  it("refuses a leaf whose extendedKeyUsage does not allow client authentication", async () => {
    const s = await caSetup();
    expect(await s.call(pki.server)).toBe(Code.Unauthenticated);
    expect(await s.store.lookup(parseCertificate(pki.server.cert), new AbortController().signal)).toMatchObject({
      kind: "refused",
    });
  });
});

afterAll(() => {
  expect(cleanups).toEqual([]);
});
