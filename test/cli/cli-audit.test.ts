// `certgate audit` and `certgate serve --log-format json` against real
// `certgate serve` processes, on a data folder and on PostgreSQL: the audit
// trail survives a restart, and every log line is JSON.
import type { ChildProcess } from "node:child_process";
import { appendFile, mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCertificate } from "../../src/core/certificate.js";
import { runCli } from "../../src/cli/main.js";
import {
  clientEnv,
  createCliFixture,
  killAll,
  run,
  runHere,
  serveAccessArgs,
  spawnCli,
  startServe,
  type CliFixture,
} from "../support/cli-harness.js";
import { waitFor } from "../support/harness.js";
import { createTestDatabase, postgresSkipReason, type TestDatabase } from "../support/postgres.js";

const pgSkip = await postgresSkipReason();
let fixture: CliFixture;
let db: TestDatabase | undefined;

beforeAll(async () => {
  fixture = await createCliFixture();
  if (pgSkip === undefined) db = await createTestDatabase();
});
afterAll(async () => {
  killAll();
  await rm(fixture.tmp, { recursive: true, force: true });
  await db?.drop();
});

const sha256 = (who: "admin" | "reader" | "foreign") => parseCertificate(fixture[who].cert).sha256;

const tlsArgs = () => serveAccessArgs(fixture);
const as = (who: "admin" | "reader" | "foreign", url: string) => clientEnv(fixture, who, url);

interface JsonEvent {
  action: string;
  result: string;
  code?: string;
  certificateId?: string;
  actorSha256Thumbprint?: string;
  sha256Thumbprint?: string;
}

async function auditJson(url: string, args: string[] = []): Promise<JsonEvent[]> {
  const result = await run(["audit", "--json", ...args], as("reader", url));
  expect(result.code, result.stderr).toBe(0);
  return (JSON.parse(result.stdout) as { events: JsonEvent[] }).events;
}

const backends = [
  { name: "a data folder", skip: false, args: () => ["--data-dir", join(fixture.tmp, "store")] },
  { name: "PostgreSQL", skip: pgSkip !== undefined, args: () => ["--database", db!.url] },
];

describe.each(backends)("certgate audit on $name", ({ name, skip, args }) => {
  it.skipIf(skip)("shows creates, deletes and a reader's refused delete, also after serve restarts", async () => {
    let serve = await startServe([...args(), ...tlsArgs()]);
    try {
      const upload = await run(["upload", fixture.files["alice.pem"]!, "--id", "alice"], as("admin", serve.url));
      expect(upload.code, upload.stderr).toBe(0);
      const refused = await run(["delete", "alice"], as("reader", serve.url));
      expect(refused.code).not.toBe(0);
      const deleted = await run(["delete", "alice"], as("admin", serve.url));
      expect(deleted.code, deleted.stderr).toBe(0);
    } finally {
      expect(await serve.stop()).toBe(0);
    }
    // A crash in the middle of a record's write, on the folder store.
    if (name === "a data folder")
      await appendFile(
        join(fixture.tmp, "store", ".certgate-audit.jsonl"),
        '{"sum":"0123456789abcdef","event":{"seq":4,"ti',
      );
    serve = await startServe([...args(), ...tlsArgs()]);
    try {
      if (name === "a data folder") {
        expect(serve.output().stderr).toMatch(
          /skipped \S+\.certgate-audit\.jsonl: line 3 of the audit trail: not a complete record \(torn or damaged\)/,
        );
      }
      const events = await auditJson(serve.url);
      expect(
        events.map((e) => [e.action, e.result, e.code ?? "", e.certificateId ?? "", e.actorSha256Thumbprint]),
      ).toEqual([
        ["create", "ok", "", "alice", sha256("admin")],
        ["delete", "refused", "permission_denied", "", sha256("reader")],
        ["delete", "ok", "", "alice", sha256("admin")],
      ]);
      const alice = parseCertificate(fixture.pki.alice.cert).sha256;
      expect(events[0]!.sha256Thumbprint).toBe(alice);
      expect(events[2]!.sha256Thumbprint).toBe(alice);
      expect((await auditJson(serve.url, ["--id", "alice"])).map((e) => e.result)).toEqual(["ok", "ok"]);
      expect(await auditJson(serve.url, ["--since", "1h"])).toEqual(events);
      const text = await run(["audit", "--id", "alice"], as("reader", serve.url));
      expect(text.code, text.stderr).toBe(0);
      const lines = text.stdout.trimEnd().split("\n");
      expect(lines[0]).toMatch(/^TIME\s+ACTION\s+RESULT\s+ID\s+ACTOR\s+REASON$/);
      expect(lines[1]).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\s+create\s+ok\s+alice\s+CN=admin [0-9A-F]{16}…$/);
      expect(lines).toHaveLength(3);
      // Unknown certificates cannot read the trail.
      const foreign = await run(["audit"], as("foreign", serve.url));
      expect(foreign.code).toBe(1);
      // Later records still go in, after the torn line.
      expect((await run(["upload", fixture.files["bob.pem"]!, "--id", "bob"], as("admin", serve.url))).code).toBe(0);
      const later = await auditJson(serve.url);
      expect(later.slice(0, 3)).toEqual(events);
      expect(later.slice(3).map((e) => [e.action, e.result, e.certificateId])).toEqual([["create", "ok", "bob"]]);
    } finally {
      await serve.stop();
    }
  });
});

describe("certgate audit command line", () => {
  it("checks a data folder's trail with --verify, and refuses flags that do not go with it", async () => {
    const verifyWithId = await runHere(["audit", "--verify", "--id", "alice"]);
    expect(verifyWithId.code).toBe(2);
    expect(verifyWithId.stderr).toMatch(/--verify checks the whole trail: --id and --since do not apply/);
    const dirWithoutVerify = await runHere(["audit", "--data-dir", fixture.tmp, "--store", "https://127.0.0.1:1"]);
    expect(dirWithoutVerify.code).toBe(2);
    expect(dirWithoutVerify.stderr).toMatch(/--data-dir and --audit-key-file go with --verify/);
    const empty = join(fixture.tmp, "no-trail");
    await mkdir(empty, { recursive: true });
    const none = await runHere(["audit", "--verify", "--data-dir", empty]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no audit trail files/);
    await writeFile(join(fixture.tmp, "short.key"), "too short\n");
    const shortKey = await runHere([
      "audit",
      "--verify",
      "--data-dir",
      empty,
      "--audit-key-file",
      join(fixture.tmp, "short.key"),
    ]);
    expect(shortKey.code).toBe(1);
    expect(shortKey.stderr).toMatch(/--audit-key-file \S+: the key is 9 bytes; give at least 16/);
  });

  it("refuses serve's audit flags with --database, and a short audit key, before starting", async () => {
    await writeFile(join(fixture.tmp, "short.key"), "too short\n");
    const withDatabase = await runHere([
      "serve",
      "--database",
      "postgres://127.0.0.1:1/x",
      "--audit-max-bytes",
      "4096",
    ]);
    expect(withDatabase.code).toBe(2);
    expect(withDatabase.stderr).toMatch(/--audit-max-bytes applies to a data folder, not to --database/);
    const shortKey = await runHere([
      "serve",
      ...tlsArgs(),
      "--data-dir",
      join(fixture.tmp, "short-key-store"),
      "--audit-key-file",
      join(fixture.tmp, "short.key"),
    ]);
    expect(shortKey.code).toBe(1);
    expect(shortKey.stderr).toMatch(/serve: --audit-key-file \S+: the key is 9 bytes; give at least 16/);
  });

  it("refuses a --since that is not a duration, before connecting", async () => {
    const result = await runHere(["audit", "--since", "yesterday", "--store", "https://127.0.0.1:1"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^certgate: invalid --since "yesterday": give a number and a unit/);
  });
});

// A `certgate serve` process whose output is all JSON: waits for the record
// with the URL.
async function startJsonServe(extra: string[]): Promise<{
  child: ChildProcess;
  url: string;
  out: () => { stdout: string; stderr: string };
  stop: () => Promise<number | null>;
}> {
  const child = spawnCli(["serve", "--log-format", "json", "--listen", "127.0.0.1:0", ...extra]);
  let stdout = "";
  let stderr = "";
  let code: number | null | undefined;
  const exit = new Promise<number | null>((resolve) => child.on("exit", (c) => resolve((code = c))));
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  await waitFor(() => code !== undefined || /"url":"https:/.test(stdout), "certgate serve to listen", 30_000);
  const url = stdout
    .split("\n")
    .filter((l) => l.includes('"url"'))
    .map((l) => (JSON.parse(l) as { url: string }).url)[0];
  if (url === undefined) throw new Error(`certgate serve did not start:\n${stdout}\n${stderr}`);
  return {
    child,
    url,
    out: () => ({ stdout, stderr }),
    stop: () => {
      if (code === undefined) child.kill("SIGTERM");
      return exit;
    },
  };
}

interface LogLine {
  time: string;
  level: string;
  msg: string;
  [field: string]: unknown;
}

function parseLines(text: string): LogLine[] {
  const lines = text.split("\n");
  expect(lines.pop()).toBe("");
  return lines.map((line) => {
    const parsed = JSON.parse(line) as LogLine;
    expect(Object.keys(parsed).slice(0, 3)).toEqual(["time", "level", "msg"]);
    expect(new Date(parsed.time).toISOString()).toBe(parsed.time);
    expect(["info", "warn", "error"]).toContain(parsed.level);
    return parsed;
  });
}

describe("certgate serve --log-format json", () => {
  it("prints every line of both streams as JSON with time, level, msg and fields", async () => {
    const dataDir = join(fixture.tmp, "json-store");
    await mkdir(dataDir);
    // One refusal logged per interval: the others are counted in the summary line.
    const serve = await startJsonServe([
      "--data-dir",
      dataDir,
      "--refusal-log-limit",
      "1",
      "--refusal-log-interval",
      "600",
      ...tlsArgs(),
    ]);
    try {
      expect((await run(["upload", fixture.files["bob.pem"]!, "--id", "bob"], as("admin", serve.url))).code).toBe(0);
      expect((await run(["delete", "bob"], as("reader", serve.url))).code).not.toBe(0);
      expect((await run(["list"], as("foreign", serve.url))).code).not.toBe(0);
      expect((await run(["list"], as("foreign", serve.url))).code).not.toBe(0);
      await waitFor(() => serve.out().stderr.includes("refused"), "the refusal to be logged");
    } finally {
      expect(await serve.stop()).toBe(0);
    }
    const stdout = parseLines(serve.out().stdout);
    const stderr = parseLines(serve.out().stderr);
    expect(stdout.map((l) => l.msg)).toEqual([
      `data folder ${dataDir} (0 certificates)`,
      `console on ${serve.url}/ (for admin and reader client certificates)`,
      `listening on ${serve.url}`,
    ]);
    expect(stdout[0]).toMatchObject({ level: "info", certificates: 0 });
    expect(stdout[2]).toMatchObject({ level: "info", url: serve.url });
    expect(stderr.find((l) => l.msg === "stored bob")).toMatchObject({ level: "info", id: "bob" });
    const refusals = stderr.filter((l) => l.msg.startsWith("refused "));
    expect(refusals).toEqual([
      expect.objectContaining({
        level: "warn",
        procedure: "/certgate.v1.CertificateStoreService/DeleteCertificate",
        reason: "permission_denied",
        sha256: sha256("reader"),
      }),
    ]);
    expect(stderr.filter((l) => / more refusals in the last /.test(l.msg))).toEqual([
      expect.objectContaining({
        level: "warn",
        msg: "2 more refusals in the last 600 s",
        count: 2,
        intervalSeconds: 600,
      }),
    ]);
    expect(stderr.map((l) => l.msg).slice(-3)).toEqual(["stopping", "2 more refusals in the last 600 s", "stopped"]);
  });

  it("prints a start-up failure as one JSON line with level error", async () => {
    const result = await runHere([
      "serve",
      "--log-format",
      "json",
      "--listen",
      "nowhere",
      "--data-dir",
      join(fixture.tmp, "x"),
    ]);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    const [line, ...rest] = parseLines(result.stderr);
    expect(rest).toEqual([]);
    expect(line).toMatchObject({ level: "error", exitCode: 2 });
    expect(line!.msg).toMatch(/^--listen nowhere: expected HOST:PORT/);
  });

  it("refuses an unknown format, and keeps text by default", async () => {
    const result = await runHere(["serve", "--log-format", "xml"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^certgate: --log-format xml: expected text or json/);
    const help = await runHere(["serve", "--help"]);
    expect(help.stdout).toContain("--log-format FORMAT");
  });

  it("turns process warnings into records while it runs, and gives Node its printer back after", async () => {
    const printers = process.listeners("warning");
    const stop = new AbortController();
    let stdout = "";
    let stderr = "";
    const done = runCli(
      [
        "serve",
        "--log-format",
        "json",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        join(fixture.tmp, "json-warn"),
        ...tlsArgs(),
      ],
      {
        stdout: (text) => void (stdout += text),
        stderr: (text) => void (stderr += text),
        env: {},
        cwd: fixture.tmp,
        signal: stop.signal,
      },
    );
    try {
      await waitFor(() => stdout.includes('"url"'), "certgate serve to listen", 30_000);
      process.emitWarning("something to know", { code: "CERTGATE_TEST_WARNING" });
      await waitFor(() => stderr.includes("something to know"), "the warning to be logged");
    } finally {
      stop.abort();
      expect(await done).toBe(0);
    }
    expect(parseLines(stderr)).toContainEqual(
      expect.objectContaining({
        level: "warn",
        msg: "something to know",
        code: "CERTGATE_TEST_WARNING",
        warning: "Warning",
      }),
    );
    expect(process.listeners("warning")).toEqual(printers);
  });

  it("turns the development mode guide into one record with its text", async () => {
    const dataDir = join(fixture.tmp, "json-dev");
    const serve = await startJsonServe(["--data-dir", dataDir]);
    await serve.stop();
    const stdout = parseLines(serve.out().stdout);
    const guide = stdout.find((l) => typeof l.text === "string");
    expect(guide?.msg).toMatch(/^Development mode: certificates created in /);
    expect(guide?.text).toContain("upload");
    parseLines(serve.out().stderr);
  });
});
