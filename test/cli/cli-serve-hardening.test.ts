import { spawn } from "node:child_process";
import { existsSync, utimesSync, writeFileSync } from "node:fs";
import { mkdir, readFile, rename, rm, symlink, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import * as http2 from "node:http2";
import * as tls from "node:tls";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import {
  CertificateStoreService,
  type WatchCertificatesResponse,
} from "../../src/gen/certgate/v1/certificate_store_pb.js";
import { parseCertificate } from "../../src/core/certificate.js";
import type { IssuedCertificate } from "../../src/dev-certificates.js";
import { lockDataFolder, lockFileName } from "../../src/cli/data-folder-lock.js";
import {
  createCliFixture,
  expectFailure,
  killAll,
  run,
  runHere,
  serveTlsArgs,
  spawnCli,
  startServe,
} from "../support/cli-harness.js";
import { waitFor, type TestPki } from "../support/harness.js";

let tmp: string;
let pki: TestPki;
let admin: IssuedCertificate;
let reader: IssuedCertificate;
let files: Record<string, string>;

beforeAll(async () => {
  ({ tmp, pki, admin, reader, files } = await createCliFixture());
});

afterAll(async () => {
  killAll();
  await rm(tmp, { recursive: true, force: true });
});

const tlsArgs = () => serveTlsArgs({ files });

// A serve on `dataDir` with the test TLS files and the admin certificate.
function serveArgs(dataDir: string): string[] {
  return ["--data-dir", dataDir, ...tlsArgs(), "--admin", parseCertificate(admin.cert).sha256];
}

function clientFor(url: string, who: IssuedCertificate) {
  return createClient(
    CertificateStoreService,
    createConnectTransport({
      baseUrl: url,
      httpVersion: "2",
      nodeOptions: { ca: pki.ca.cert, cert: who.cert, key: who.key },
    }),
  );
}

describe("certgate serve when its folders cannot be checked", () => {
  it("keeps serving the last good set and logs the folder (parent replaced by a file, symlink loop)", async () => {
    const base = join(tmp, "unreadable");
    const dataParent = join(base, "parent");
    const dataDir = join(dataParent, "data");
    const readers = join(base, "readers");
    await mkdir(dataDir, { recursive: true });
    await mkdir(readers, { recursive: true });
    await writeFile(join(readers, "reader.pem"), reader.cert);
    const serve = await startServe([...serveArgs(dataDir), "--reader-dir", readers]);
    try {
      const asAdmin = clientFor(serve.url, admin);
      await asAdmin.createCertificate({ certificate: pki.alice.der, certificateId: "alice" });
      // Stage one: the data folder's parent becomes a file (ENOTDIR), the
      // reader folder a symlink to itself (ELOOP): statSync throws for both.
      await rename(dataParent, join(base, "parent-moved"));
      await writeFile(dataParent, "not a folder");
      await rename(readers, join(base, "readers-moved"));
      await symlink(readers, readers);
      const logged = (folder: string, code: string) =>
        serve
          .output()
          .stderr.split("\n")
          .some((line) => line.includes(`skipped ${folder}: `) && line.includes(`(${code})`));
      await waitFor(() => logged(dataDir, "ENOTDIR") && logged(readers, "ELOOP"), "the first folder problems", 20_000);
      // Stage two, the causes swapped: the folders are no longer watched, so
      // only the periodic rescan can report these, and it runs into the
      // throwing statSync first.
      await rm(dataParent);
      await symlink(dataParent, dataParent);
      await rm(readers);
      await symlink(join(base, "parent-moved", "data", "alice.pem", "x"), readers);
      const exited = () => serve.child.exitCode !== null || serve.child.signalCode !== null;
      await waitFor(
        () => exited() || (logged(dataDir, "ELOOP") && logged(readers, "ENOTDIR")),
        "the rescans to report the new causes",
        20_000,
      );
      expect(exited(), serve.output().stderr).toBe(false);
      expect(serve.output().stderr).toMatch(/the last good set of certificates is still served/);
      expect(serve.child.exitCode).toBeNull();
      // The reader from the last good set is still admitted, and verify works
      // from memory; the process outlives more rescans.
      const asReader = clientFor(serve.url, reader);
      const verified = await asReader.verifyCertificate({ subject: { case: "certificate", value: pki.alice.der } });
      expect(verified.admitted).toBe(true);
      const refused = await asReader.verifyCertificate({ subject: { case: "certificate", value: pki.bob.der } });
      expect(refused.admitted).toBe(false);
      expect(serve.child.exitCode).toBeNull();
      expect(serve.output().stderr).not.toMatch(/Unhandled|unhandled|Error:/);
    } finally {
      expect(await serve.stop()).toBe(0);
    }
  }, 60_000);
});

// A pid that ran a moment ago and no longer does.
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  await new Promise((resolve) => child.once("exit", resolve));
  return child.pid!;
}

describe("certgate serve's data folder lock", () => {
  it("refuses a second serve on the same folder, naming the holder; a folder released by a clean stop is free", async () => {
    const dataDir = join(tmp, "locked");
    const first = await startServe(serveArgs(dataDir));
    try {
      const second = await run(["serve", "--listen", "127.0.0.1:0", ...serveArgs(dataDir)]);
      expect(second.code).toBe(1);
      const line = second.stderr.trim().split("\n").at(-1)!;
      expect(line).toContain(
        `--data-dir ${dataDir}: in use by another certgate serve (pid ${first.child.pid} on host ${hostname()}, since 20`,
      );
      // The first one still serves.
      const listed = await clientFor(first.url, admin).listCertificates({});
      expect(listed.certificates).toEqual([]);
    } finally {
      expect(await first.stop()).toBe(0);
    }
    expect(existsSync(join(dataDir, lockFileName))).toBe(false);
    const again = await startServe(serveArgs(dataDir));
    expect(again.output().stderr).not.toMatch(/took over/);
    expect(await again.stop()).toBe(0);
  }, 60_000);

  it("takes over the lock of a serve killed with SIGKILL", async () => {
    const dataDir = join(tmp, "killed");
    const first = await startServe(serveArgs(dataDir));
    expect(await first.stop("SIGKILL")).toBe("SIGKILL");
    const lock = JSON.parse(await readFile(join(dataDir, lockFileName), "utf8")) as { pid: number };
    expect(lock.pid).toBe(first.child.pid);
    const second = await startServe(serveArgs(dataDir));
    try {
      expect(second.output().stderr).toContain(
        `took over the data folder lock of pid ${first.child.pid} on host ${hostname()}`,
      );
      await clientFor(second.url, admin).createCertificate({ certificate: pki.alice.der, certificateId: "alice" });
    } finally {
      expect(await second.stop()).toBe(0);
    }
  }, 60_000);

  it("lets exactly one of three serves started at once take over a stale lock", async () => {
    const dataDir = join(tmp, "stale");
    await mkdir(dataDir, { recursive: true });
    const stale = { pid: await deadPid(), host: hostname(), started: new Date().toISOString() };
    await writeFile(join(dataDir, lockFileName), JSON.stringify(stale));
    const children = Array.from({ length: 3 }, () => {
      const child = spawnCli(["serve", "--listen", "127.0.0.1:0", ...serveArgs(dataDir)]);
      const state = { stdout: "", stderr: "", code: undefined as number | null | undefined };
      child.stdout!.on("data", (d: Buffer) => (state.stdout += d.toString()));
      child.stderr!.on("data", (d: Buffer) => (state.stderr += d.toString()));
      child.on("exit", (code) => (state.code = code));
      return { child, state };
    });
    try {
      await waitFor(
        () =>
          children.filter((c) => c.state.code !== undefined).length === 2 &&
          children.some((c) => /listening on/.test(c.state.stdout)),
        "one serve listening and two refused",
        60_000,
      );
      const winner = children.find((c) => /listening on/.test(c.state.stdout))!;
      expect(winner.state.stderr).toContain(`took over the data folder lock of pid ${stale.pid}`);
      for (const loser of children.filter((c) => c !== winner)) {
        expect(loser.state.code).toBe(1);
        expect(loser.state.stderr).toContain(`in use by another certgate serve (pid ${winner.child.pid} on host`);
      }
    } finally {
      for (const { child } of children) child.kill("SIGTERM");
    }
  }, 90_000);
});

describe("lockDataFolder()", () => {
  it("takes over a lock from another host only once it has not been refreshed for three periods", async () => {
    const dataDir = join(tmp, "foreign-host");
    await mkdir(dataDir, { recursive: true });
    const file = join(dataDir, lockFileName);
    await writeFile(file, JSON.stringify({ pid: 1, host: "elsewhere.example", started: "2026-01-01T00:00:00.000Z" }));
    const refreshMs = 10_000;
    // Refreshed 20 s ago: the holder may be alive.
    const recent = new Date(Date.now() - 2 * refreshMs);
    utimesSync(file, recent, recent);
    expect(() => lockDataFolder(dataDir, { refreshMs })).toThrow(
      /pid 1 on host elsewhere\.example, since 2026-01-01T00:00:00\.000Z/,
    );
    // Not refreshed for 40 s: gone.
    const old = new Date(Date.now() - 4 * refreshMs);
    utimesSync(file, old, old);
    const lock = lockDataFolder(dataDir, { refreshMs });
    expect(lock.tookOverFrom).toEqual({ pid: 1, host: "elsewhere.example", started: "2026-01-01T00:00:00.000Z" });
    expect(JSON.parse(await readFile(file, "utf8"))).toMatchObject({ pid: process.pid, host: hostname() });
    // Ours now: a second taker is refused, release removes it.
    expect(() => lockDataFolder(dataDir, { refreshMs })).toThrow(/in use by another certgate serve/);
    lock.release();
    expect(existsSync(file)).toBe(false);
  });

  it("never takes over a lock file it cannot read as a holder", async () => {
    const dataDir = join(tmp, "junk-lock");
    await mkdir(dataDir, { recursive: true });
    await writeFile(join(dataDir, lockFileName), "not json");
    expect(() => lockDataFolder(dataDir)).toThrow(/cannot be read; remove it/);
  });
});

describe("certgate serve's limit flags", () => {
  it("rate-limits refusal logs with a count, caps watches per connection, and closes idle connections", async () => {
    const dataDir = join(tmp, "limits");
    const serve = await startServe([
      ...serveArgs(dataDir),
      "--refusal-log-limit",
      "2",
      "--refusal-log-interval",
      "3600",
      "--max-watches-per-connection",
      "1",
      "--idle-timeout",
      "0.5",
    ]);
    const refusedLines = () =>
      serve
        .output()
        .stderr.split("\n")
        .filter((line) => line.includes(": refused "));
    try {
      // Ten refused calls (no certificate): two lines, the rest counted.
      const anonymous = createClient(
        CertificateStoreService,
        createConnectTransport({ baseUrl: serve.url, httpVersion: "2", nodeOptions: { ca: pki.ca.cert } }),
      );
      for (let i = 0; i < 10; i++) {
        const code = await anonymous.listCertificates({}).then(
          () => "ok",
          (error: unknown) => ConnectError.from(error).code,
        );
        expect(code).toBe(Code.Unauthenticated);
      }
      await waitFor(() => refusedLines().length === 2, "two refusal lines");
      // One watch per connection.
      const client = clientFor(serve.url, admin);
      const abort = new AbortController();
      const first = client.watchCertificates({}, { signal: abort.signal })[Symbol.asyncIterator]();
      expect((await first.next()).done).toBe(false);
      const second = client.watchCertificates({}, { signal: abort.signal })[Symbol.asyncIterator]();
      await expect(second.next()).rejects.toMatchObject({ code: Code.ResourceExhausted });
      abort.abort();
      // An idle TLS connection is closed.
      const { port } = new URL(serve.url);
      const idle = tls.connect({
        host: "127.0.0.1",
        port: Number(port),
        ca: pki.ca.cert,
        servername: "localhost",
        ALPNProtocols: ["h2"],
      });
      let closed = false;
      idle.on("close", () => (closed = true));
      idle.on("error", () => undefined);
      idle.resume();
      await waitFor(() => closed, "the idle connection to be closed");
    } finally {
      expect(await serve.stop()).toBe(0);
    }
    expect(refusedLines()).toHaveLength(2);
    expect(serve.output().stderr).toMatch(/^certgate serve: 8 more refusals in the last 3600 s$/m);
  }, 60_000);

  it("sends watchers a new snapshot for a change larger than --watch-max-entry-changes", async () => {
    const dataDir = join(tmp, "entry-cap");
    const serve = await startServe([
      "--data-dir",
      dataDir,
      ...tlsArgs(),
      "--reader",
      parseCertificate(reader.cert).sha256,
      "--watch-max-entry-changes",
      "2",
    ]);
    const abort = new AbortController();
    try {
      const events = clientFor(serve.url, reader)
        .watchCertificates({}, { signal: abort.signal })
        [Symbol.asyncIterator]();
      const next = async () => (await events.next()).value as WatchCertificatesResponse;
      expect((await next()).event.case).toBe("snapshot");
      expect((await next()).event.case).toBe("heartbeat");
      // Ten files written in one go: the folder store announces them as one
      // batch (or a few), at least one of them over the cap of 2.
      for (let i = 0; i < 10; i++)
        writeFileSync(join(dataDir, `dropped-${i}.pem`), i % 2 === 0 ? pki.alice.cert : pki.bob.cert);
      const seen = new Set<string>();
      let snapshots = 0;
      while (seen.size < 10) {
        const event = await next();
        if (event.event.case === "snapshot") {
          snapshots++;
          for (const c of event.event.value.certificates) seen.add(c.certificateId);
        } else if (event.event.case === "change") {
          for (const c of event.event.value.upserted) seen.add(c.certificateId);
        }
      }
      expect(snapshots).toBeGreaterThan(0);
    } finally {
      abort.abort();
      expect(await serve.stop()).toBe(0);
    }
  }, 60_000);

  it("closes a connection with GOAWAY after --max-refused-calls-per-connection refused calls", async () => {
    const serve = await startServe([
      ...serveArgs(join(tmp, "refused-calls")),
      "--max-refused-calls-per-connection",
      "3",
    ]);
    // A client the service does not know, on one HTTP/2 connection.
    const session = http2.connect(serve.url, { ca: pki.ca.cert, cert: reader.cert, key: reader.key });
    session.on("error", () => undefined);
    let goaway = false;
    session.on("goaway", () => (goaway = true));
    const refused: number[] = [];
    try {
      for (let i = 0; i < 10 && !goaway; i++) {
        const status = await new Promise<number>((resolve, reject) => {
          const stream = session.request({
            ":method": "POST",
            ":path": "/certgate.v1.CertificateStoreService/DeleteCertificate",
            "content-type": "application/json",
          });
          let code = 0;
          stream.on("response", (headers) => (code = Number(headers[":status"])));
          stream.on("error", reject);
          stream.on("close", () => resolve(code));
          stream.resume();
          stream.end(JSON.stringify({ id: "nothing" }));
        }).catch(() => 0);
        if (status !== 0) refused.push(status);
      }
      await waitFor(() => goaway && session.closed, "GOAWAY after three refused calls");
      expect(refused).toEqual([401, 401, 401]);
    } finally {
      session.destroy();
      expect(await serve.stop()).toBe(0);
    }
  }, 60_000);

  it.each([
    [["--max-watches", "0"], "--max-watches 0: expected a whole number of at least 1"],
    [
      ["--max-watches-per-connection", "1.5"],
      "--max-watches-per-connection 1.5: expected a whole number of at least 1",
    ],
    [["--idle-timeout=-1"], "--idle-timeout -1: expected a number of seconds (0 for never)"],
    [["--handshake-timeout", "0"], "--handshake-timeout 0: expected a number of seconds above 0"],
    [["--refusal-log-limit", "x"], "--refusal-log-limit x: expected a whole number of at least 0"],
    [["--watch-max-entry-changes", "0"], "--watch-max-entry-changes 0: expected a whole number of at least 1"],
    [
      ["--max-refused-calls-per-connection=-3"],
      "--max-refused-calls-per-connection -3: expected a whole number of at least 0",
    ],
  ])("refuses %j at start-up", async (flags, message) => {
    const result = await runHere(["serve", ...serveArgs(join(tmp, "flags")), ...flags]);
    expectFailure(result, 2, `certgate: ${message} (see certgate serve --help)`);
  });
});
