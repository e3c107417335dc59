import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { EchoService } from "../../../src/gen/certgate/example/v1/echo_pb.js";
import { createClientCertInterceptor } from "../../../src/index.js";
import { parseCertificate } from "../../../src/index.js";
import { nonDerVariants } from "../../support/non-der-certificates.js";
import { createDevCa, issueDevCertificate, type IssuedCertificate } from "../../../src/dev-certificates.js";
import {
  createDirectoryStore,
  type DirectoryStore,
  type DirectoryStoreOptions,
  type DirectoryStoreProblem,
} from "../../../src/stores/directory-store.js";
import {
  connectErrorOf,
  createTestPki,
  openTransport,
  startEchoServer,
  waitFor,
  type TestPki,
  type TestServer,
} from "../../support/harness.js";

// The folder store called directly: file kinds and encodings, broken and
// hostile files, and the write side.

const names = ["alice", "bob", "carol", "dave", "erin", "frank", "gina", "hank", "ivan", "judy", "mallory"] as const;
type Name = (typeof names)[number];
const certs = {} as Record<Name, IssuedCertificate>;
let ca: IssuedCertificate;

beforeAll(async () => {
  ca = await createDevCa({ commonName: "files test CA" });
  for (const name of names) certs[name] = await issueDevCertificate(ca, { commonName: name, usages: ["client"] });
});

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempFolder(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "certgate-files-"));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function open(options: DirectoryStoreOptions): Promise<DirectoryStore> {
  const store = await createDirectoryStore({ onProblem: () => {}, ...options });
  cleanups.push(() => store.close());
  return store;
}

const signal = new AbortController().signal;
async function admitted(store: DirectoryStore, cert: IssuedCertificate): Promise<string | undefined> {
  const verdict = await store.lookup(parseCertificate(cert.cert), signal);
  return verdict.kind === "admitted" ? verdict.entry.id : undefined;
}

function write(dir: string, name: string, content: string | Uint8Array): void {
  fs.writeFileSync(path.join(dir, name), content);
}

async function failure(promise: Promise<unknown>): Promise<ConnectError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConnectError);
  return error as ConnectError;
}

// Replaces a file the way careful tools do: a temporary file renamed into place.
function replace(dir: string, name: string, content: string): void {
  const temporary = path.join(dir, `.${name}.tmp`);
  fs.writeFileSync(temporary, content);
  fs.renameSync(temporary, path.join(dir, name));
}

const bytes = (text: string) => new TextEncoder().encode(text);

describe("createDirectoryStore() file kinds", () => {
  it("admits certificates from PEM and DER files of every extension, bundles too", async () => {
    const dir = tempFolder();
    write(dir, "alice.pem", certs.alice.cert);
    write(dir, "bob.crt", certs.bob.der);
    write(dir, "carol.cer", `subject=CN = carol\r\n${certs.carol.cert.replace(/\n/g, "\r\n")}`);
    write(dir, "dave.der", certs.dave.der);
    write(dir, "EXPORT.CRT", certs.ivan.cert);
    write(dir, "team.pem", `${certs.erin.cert}\n# second\n${certs.frank.cert}`);
    const store = await open({ directory: dir });
    expect(store.problems()).toEqual([]);
    expect(await admitted(store, certs.alice)).toBe("alice");
    expect(await admitted(store, certs.bob)).toBe("bob");
    expect(await admitted(store, certs.carol)).toBe("carol");
    expect(await admitted(store, certs.dave)).toBe("dave");
    expect(await admitted(store, certs.ivan)).toBe("EXPORT");
    expect(await admitted(store, certs.erin)).toBe("team");
    expect(await admitted(store, certs.frank)).toBe("team#2");
    expect(store.stats()).toEqual({ files: 6, certificates: 7, issuers: 0 });
  });

  it("refuses certificates in none of the files", async () => {
    const dir = tempFolder();
    write(dir, "team.pem", `${certs.erin.cert}${certs.frank.cert}`);
    const store = await open({ directory: dir });
    expect(await admitted(store, certs.alice)).toBeUndefined();
    expect(await store.lookup(parseCertificate(certs.gina.cert), signal)).toEqual({
      kind: "refused",
      reason: "not_allowed",
    });
  });

  it("admits the good files beside broken and hostile ones, and reports each of those", async () => {
    const dir = tempFolder();
    write(dir, "alice.pem", certs.alice.cert);
    write(dir, "bob.der", certs.bob.der);
    // Broken and hostile, each with a certificate that must stay refused.
    write(dir, "cut.der", certs.carol.der.subarray(0, certs.carol.der.length - 20));
    write(dir, "truncated.pem", certs.carol.cert.slice(0, 200));
    const body = certs.dave.cert.split("\n");
    body.splice(3, 0, "!!junk!!inside*the*armour");
    write(dir, "junk.pem", body.join("\n"));
    write(dir, "appended.der", new Uint8Array([...certs.erin.der, 0x00, 0x01]));
    write(dir, "key.pem", certs.frank.key);
    write(dir, "cert-and-key.pem", certs.gina.cert + certs.gina.key);
    write(dir, "client.key", certs.hank.key);
    write(dir, "der-key.der", new Uint8Array(Buffer.from(certs.hank.key.replace(/-----[^-]+-----|\s/g, ""), "base64")));
    write(dir, "client.p12", new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x03]));
    // A PKCS#12 archive's shape: version 3, then ContentInfo (pkcs7-data).
    write(
      dir,
      "archive.der",
      new Uint8Array([
        0x30, 0x10, 0x02, 0x01, 0x03, 0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01,
      ]),
    );
    write(dir, "empty.pem", "");
    write(dir, "text.crt", "hello");
    const big = path.join(dir, "big.pem");
    fs.writeFileSync(big, certs.ivan.cert);
    fs.truncateSync(big, 50 * 1024 * 1024); // sparse: 50 MB in no time
    fs.symlinkSync("loop-b.pem", path.join(dir, "loop-a.pem"));
    fs.symlinkSync("loop-a.pem", path.join(dir, "loop-b.pem"));
    fs.symlinkSync("nowhere.pem", path.join(dir, "dangling.pem"));
    write(dir, "bad name.pem", certs.judy.cert);
    write(dir, "twice.pem", certs.mallory.cert);
    write(dir, "twice.crt", certs.judy.der);
    // Ignored without a report: not certificate names, hidden, editors' files.
    write(dir, "notes.txt", "hi");
    write(dir, ".hidden.pem", certs.judy.cert);
    write(dir, "alice.pem~", certs.judy.cert);
    write(dir, ".alice.pem.swp", certs.judy.cert);
    fs.mkdirSync(path.join(dir, "folder.pem"));
    const reported: DirectoryStoreProblem[] = [];
    const store = await open({ directory: dir, onProblem: (p) => reported.push(p) });

    expect(await admitted(store, certs.alice)).toBe("alice");
    expect(await admitted(store, certs.bob)).toBe("bob");
    expect(await admitted(store, certs.mallory)).toBe("twice");
    for (const name of ["carol", "dave", "erin", "frank", "gina", "hank", "ivan", "judy"] as const) {
      expect(await admitted(store, certs[name]), name).toBeUndefined();
    }
    const byFile = Object.fromEntries(store.problems().map((p) => [p.file, p.code]));
    expect(byFile).toEqual({
      "cut.der": "not_a_certificate",
      "truncated.pem": "not_a_certificate",
      "junk.pem": "not_a_certificate",
      "appended.der": "not_a_certificate",
      "key.pem": "private_key",
      "cert-and-key.pem": "private_key",
      "client.key": "private_key",
      "der-key.der": "private_key",
      "client.p12": "pkcs12",
      "archive.der": "pkcs12",
      "empty.pem": "not_a_certificate",
      "text.crt": "not_a_certificate",
      "big.pem": "too_large",
      "loop-a.pem": "unreadable",
      "loop-b.pem": "unreadable",
      "dangling.pem": "unreadable",
      "bad name.pem": "invalid_id",
      "twice.crt": "duplicate_id",
    });
    expect(reported.map((p) => p.file).sort()).toEqual(Object.keys(byFile).sort());
    const loop = store.problems().find((p) => p.file === "loop-a.pem");
    expect(loop).toMatchObject({ path: path.join(path.resolve(dir), "loop-a.pem"), reason: "symlink loop" });
  });

  it("admits a reported file once it is fixed, and drops its report", async () => {
    const dir = tempFolder();
    write(dir, "carol.pem", certs.carol.cert.slice(0, 100));
    const store = await open({ directory: dir });
    expect(await admitted(store, certs.carol)).toBeUndefined();
    expect(store.problems()).toHaveLength(1);
    write(dir, "carol.pem", certs.carol.cert);
    await waitFor(async () => (await admitted(store, certs.carol)) === "carol", "the fixed file");
    expect(store.problems()).toEqual([]);
  });

  it("refuses a certificate whose file grew past maxFileBytes", async () => {
    const dir = tempFolder();
    write(dir, "carol.pem", certs.carol.cert);
    const store = await open({ directory: dir, maxFileBytes: 2048 });
    expect(await admitted(store, certs.carol)).toBe("carol");
    write(dir, "carol.pem", certs.carol.cert + " ".repeat(4096));
    await waitFor(async () => (await admitted(store, certs.carol)) === undefined, "the file to be dropped");
    expect(store.problems()).toMatchObject([{ file: "carol.pem", code: "too_large" }]);
  });

  it("admits only the first of two files of one id (.pem before .crt, .cer, .der), and the other once the first is gone", async () => {
    const dir = tempFolder();
    write(dir, "same.der", certs.bob.der);
    write(dir, "same.pem", certs.alice.cert);
    const store = await open({ directory: dir });
    expect(await admitted(store, certs.alice)).toBe("same");
    expect(await admitted(store, certs.bob)).toBeUndefined();
    fs.rmSync(path.join(dir, "same.pem"));
    await waitFor(async () => (await admitted(store, certs.bob)) === "same", "same.der to take over");
    expect(await admitted(store, certs.alice)).toBeUndefined();
    expect(store.problems()).toEqual([]);
  });
});

describe("createDirectoryStore() write side", () => {
  it("admits a certificate stored with put(), and keeps its labels and create time across a restart", async () => {
    const dir = tempFolder();
    const store = await open({ directory: dir, clock: () => 1_700_000_000_123 });
    const stored = await store.put("alice-laptop", certs.alice.der, { labels: { owner: "alice", "team-name": "a-b" } });
    expect(stored).toMatchObject({
      id: "alice-laptop",
      sha256: parseCertificate(certs.alice.cert).sha256,
      labels: { owner: "alice", "team-name": "a-b" },
    });
    expect(stored.createTime.getTime()).toBe(1_700_000_000_123);
    expect(await admitted(store, certs.alice)).toBe("alice-laptop");
    expect(fs.readdirSync(dir)).toEqual(["alice-laptop.pem"]);
    await store.close();
    const again = await open({ directory: dir });
    expect(await admitted(again, certs.alice)).toBe("alice-laptop");
    expect(await again.get("alice-laptop")).toEqual(stored);
  });

  it("stores with put() only what a single upload takes: the canonical certificate, none of its non-DER variants", async () => {
    const dir = tempFolder();
    const store = await open({ directory: dir });
    for (const [name, der] of Object.entries(nonDerVariants(certs.bob.der))) {
      expect((await failure(store.put("variant", der))).code, name).toBe(Code.InvalidArgument);
    }
    await store.put("canonical", certs.bob.der);
    expect(fs.readdirSync(dir)).toEqual(["canonical.pem"]);
    expect(await admitted(store, certs.bob)).toBe("canonical");
  });

  it("refuses a certificate once delete() removed it", async () => {
    const dir = tempFolder();
    write(dir, "bob.crt", certs.bob.der);
    const store = await open({ directory: dir });
    expect(await admitted(store, certs.bob)).toBe("bob");
    await store.delete("bob");
    expect(await admitted(store, certs.bob)).toBeUndefined();
    expect(fs.readdirSync(dir)).toEqual([]);
    expect(await store.get("bob")).toBeUndefined();
  });

  it("refuses writes with the codes of the contract", async () => {
    const dir = tempFolder();
    write(dir, "taken.crt", certs.bob.der);
    const store = await open({ directory: dir });
    expect((await failure(store.put("taken", certs.alice.der))).code).toBe(Code.AlreadyExists);
    await store.put("fresh", bytes(certs.alice.cert));
    expect((await failure(store.put("fresh", certs.carol.der))).code).toBe(Code.AlreadyExists);
    for (const id of ["../escape", ".hidden", "a/b", "", "x".repeat(129), "team#2", "a b"]) {
      expect((await failure(store.put(id, certs.alice.der))).code, id).toBe(Code.InvalidArgument);
    }
    expect((await failure(store.put("key", bytes(certs.alice.key)))).code).toBe(Code.InvalidArgument);
    expect((await failure(store.put("both", bytes(certs.alice.cert + certs.alice.key)))).code).toBe(
      Code.InvalidArgument,
    );
    expect((await failure(store.put("two", bytes(certs.alice.cert + certs.bob.cert)))).code).toBe(Code.InvalidArgument);
    expect((await failure(store.put("junk", new Uint8Array([0x30, 0x03, 0x01, 0x01, 0x00])))).code).toBe(
      Code.InvalidArgument,
    );
    expect((await failure(store.put("labels", certs.alice.der, { labels: { k: 1 as unknown as string } }))).code).toBe(
      Code.InvalidArgument,
    );
    expect((await failure(store.delete("unknown"))).code).toBe(Code.NotFound);
    expect((await failure(store.delete("../taken"))).code).toBe(Code.InvalidArgument);
    expect((await failure(store.get("../taken"))).code).toBe(Code.InvalidArgument);
    expect(fs.readdirSync(dir).sort()).toEqual(["fresh.pem", "taken.crt"]);
  });

  it("refuses a certificate smuggled into the file through a label", async () => {
    const dir = tempFolder();
    const store = await open({ directory: dir });
    // Label values may hold no line breaks (checkLabels), so the armour is
    // spread over several one-line labels, in the order JSON writes them.
    const body = certs.mallory.cert.replace(/-----[A-Z ]+-----|\s/g, "");
    const labels: Record<string, string> = { a0: "-----BEGIN CERTIFICATE-----" };
    for (let i = 0; i * 200 < body.length; i++) labels[`b${i}`] = body.slice(i * 200, i * 200 + 200);
    labels.z = "-----END CERTIFICATE-----";
    await expect(
      store.put("alice", certs.alice.der, { labels: { note: `x\n${certs.mallory.cert}` } }),
    ).rejects.toMatchObject({
      code: Code.InvalidArgument,
    });
    await store.put("alice", certs.alice.der, { labels });
    await store.close();
    const again = await open({ directory: dir });
    expect(await admitted(again, certs.mallory)).toBeUndefined();
    expect(await admitted(again, certs.alice)).toBe("alice");
    expect((await again.get("alice"))?.labels).toEqual(labels);
  });

  it("loses nothing to concurrent writes", async () => {
    const dir = tempFolder();
    const store = await open({ directory: dir });
    const ids = Array.from({ length: 20 }, (_, i) => `client-${String(i).padStart(2, "0")}`);
    await Promise.all(ids.map((id, i) => store.put(id, certs[names[i % names.length]!].der)));
    const race = await Promise.allSettled(names.map((n) => store.put("contested", certs[n].der)));
    expect(race.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    expect(
      race
        .filter((r) => r.status === "rejected")
        .map((r) => ConnectError.from((r as PromiseRejectedResult).reason).code),
    ).toEqual(Array(names.length - 1).fill(Code.AlreadyExists));
    expect((await store.list({ limit: 100 })).map((c) => c.id)).toEqual([...ids, "contested"]);
    await Promise.all(ids.map((id) => store.delete(id)));
    expect((await store.list({ limit: 100 })).map((c) => c.id)).toEqual(["contested"]);
    expect(fs.readdirSync(dir)).toEqual(["contested.pem"]);
  });

  it("ignores and cleans up a temporary file left by a crash", async () => {
    const dir = tempFolder();
    const leftover = path.join(dir, ".certgate-0123456789abcdef.tmp");
    fs.writeFileSync(leftover, certs.mallory.cert);
    const old = new Date(Date.now() - 3600_000);
    fs.utimesSync(leftover, old, old);
    const store = await open({ directory: dir });
    expect(await admitted(store, certs.mallory)).toBeUndefined();
    expect(fs.existsSync(leftover)).toBe(false);
    expect(store.problems()).toEqual([]);
  });

  it("lists entries in id order, in pages, bundles expanded", async () => {
    const dir = tempFolder();
    write(dir, "b.pem", `${certs.bob.cert}${certs.carol.cert}`);
    write(dir, "a.der", certs.alice.der);
    write(dir, "c.pem", certs.dave.cert);
    const store = await open({ directory: dir });
    const all = await store.list({ limit: 10 });
    expect(all.map((c) => c.id)).toEqual(["a", "b", "b#2", "c"]);
    expect(all[2]?.sha256).toBe(parseCertificate(certs.carol.cert).sha256);
    expect((await store.list({ limit: 2 })).map((c) => c.id)).toEqual(["a", "b"]);
    expect((await store.list({ after: "b", limit: 2 })).map((c) => c.id)).toEqual(["b#2", "c"]);
    expect((await store.list({ after: "c", limit: 2 })).map((c) => c.id)).toEqual([]);
    expect((await store.get("b#2"))?.der).toEqual(certs.carol.der);
    expect(await store.get("b#3")).toBeUndefined();
    expect((await failure(store.delete("b#2"))).code).toBe(Code.InvalidArgument);
  });

  it("tells onChanges of writes and of files changed on disk, with each new revision", async () => {
    const dir = tempFolder();
    const store = await open({ directory: dir });
    const seen: [string[], number][] = [];
    store.onChanges((changes, revision) => seen.push([changes.map((c) => `${c.kind} ${c.id}`), revision]));
    await store.put("alice", certs.alice.der);
    replace(dir, "team.pem", `${certs.bob.cert}${certs.carol.cert}`);
    await waitFor(() => seen.length === 2, "the file on disk");
    replace(dir, "team.pem", certs.bob.cert);
    await waitFor(() => seen.length === 3, "the shrunk bundle");
    await store.delete("alice");
    const r = seen[0]![1];
    expect(seen).toEqual([
      [["put alice"], r],
      [["put team", "put team#2"], r + 1],
      [["delete team#2"], r + 2],
      [["delete alice"], r + 3],
    ]);
    expect(store.revision).toBe(r + 3);
  });
});

describe("createDirectoryStore() with concurrent writers on one folder", () => {
  it("never overwrites a file another writer created after the existence check: one put per id wins, the other is AlreadyExists", async () => {
    const dir = tempFolder();
    // Two stores on one folder, as two processes would have: each checks
    // the name, then writes; their writes interleave on the event loop.
    const first = await open({ directory: dir, watch: false, rescanIntervalMs: 0 });
    const second = await open({ directory: dir, watch: false, rescanIntervalMs: 0 });
    const ids = Array.from({ length: 30 }, (_, i) => `race-${i}`);
    const outcome = async (store: DirectoryStore, id: string, cert: IssuedCertificate) =>
      store.put(id, cert.der).then(
        () => ({ id, cert, result: "stored" as const }),
        (error: unknown) => ({ id, cert, result: error instanceof ConnectError ? error.code : error }),
      );
    const results = await Promise.all(
      ids.flatMap((id) => [outcome(first, id, certs.alice), outcome(second, id, certs.bob)]),
    );
    // Each store hears of the other's files by a scan (no watching here).
    await first.rescan();
    await second.rescan();
    for (const id of ids) {
      const mine = results.filter((r) => r.id === id);
      expect(mine.map((r) => r.result).sort(), id).toEqual([Code.AlreadyExists, "stored"].sort());
      const winner = mine.find((r) => r.result === "stored")!.cert;
      // The file holds the acknowledged certificate, not the loser's.
      expect(fs.readFileSync(path.join(dir, `${id}.pem`), "utf8")).toContain(winner.cert.trim().split("\n")[1]);
      expect((await first.get(id))?.sha256).toBe(parseCertificate(winner.cert).sha256);
      expect((await second.get(id))?.sha256).toBe(parseCertificate(winner.cert).sha256);
    }
    // No temporary file left behind.
    expect(fs.readdirSync(dir).filter((name) => name.startsWith(".")).length).toBe(0);
  });
});

describe("createDirectoryStore() delete, through a server", () => {
  // Review findings in the folder store's write side, end to end through a real
  // TLS server and one open HTTP/2 connection per client.

  let pki: TestPki;
  let folder: string;
  let store: DirectoryStore;
  let server: TestServer;
  const cleanups: (() => unknown)[] = [];

  beforeAll(async () => {
    pki = await createTestPki();
  });

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  afterAll(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function setup(files: Record<string, string>): Promise<void> {
    folder = fs.mkdtempSync(path.join(os.tmpdir(), "certgate-review-dir-"));
    cleanups.push(() => fs.rmSync(folder, { recursive: true, force: true }));
    for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(folder, name), text);
    // No watcher and no periodic rescan: the test decides when the folder is read again.
    store = await createDirectoryStore({ directory: folder, watch: false, rescanIntervalMs: 0, onProblem: () => {} });
    cleanups.push(() => store.close());
    server = await startEchoServer({ pki, interceptors: [createClientCertInterceptor({ store })] });
    cleanups.push(() => server.close());
  }

  function echoAs(client: TestPki["alice"]) {
    const open = openTransport(server, pki, client);
    cleanups.push(() => open.close());
    const echo = createClient(EchoService, open.transport);
    return () => echo.echo({ text: "hi" });
  }

  describe("createDirectoryStore() delete", () => {
    it("admits a certificate kept in two files of one id (one with an upper-case extension) until it is deleted", async () => {
      await setup({ "alice.pem": pki.alice.cert, "alice.CER": pki.alice.cert });
      const call = echoAs(pki.alice);
      await expect(call()).resolves.toMatchObject({ text: "hi" });
      await store.rescan();
      await expect(call()).resolves.toMatchObject({ text: "hi" });
    });

    it("refuses a deleted certificate also after a rescan, when the id had a second file with an upper-case extension", async () => {
      await setup({ "alice.pem": pki.alice.cert, "alice.CER": pki.alice.cert });
      const call = echoAs(pki.alice);
      await expect(call()).resolves.toMatchObject({ text: "hi" });
      await store.delete("alice");
      expect((await connectErrorOf(call())).code).toBe(Code.Unauthenticated);
      // Before the fix, delete removed alice.pem only: the next rescan loaded
      // alice.CER and the acknowledged deletion was undone.
      await store.rescan();
      expect((await connectErrorOf(call())).code).toBe(Code.Unauthenticated);
      expect(fs.readdirSync(folder).filter((name) => !name.startsWith("."))).toEqual([]);
      expect(await store.get("alice")).toBeUndefined();
    });
  });
});
