import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Code, createClient } from "@connectrpc/connect";
import { EchoService } from "../src/gen/certgate/example/v1/echo_pb.js";
import { createClientCertInterceptor } from "../src/index.js";
import { createDirectoryStore, type DirectoryStore } from "../src/stores/directory-store.js";
import { connectErrorOf, createTestPki, openTransport, startEchoServer, type TestPki, type TestServer } from "./support/harness.js";

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
