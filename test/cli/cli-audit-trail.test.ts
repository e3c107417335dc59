// The data folder's audit trail under attack, against real `certgate serve`
// processes: a flood of refusals with huge subjects, the file renamed,
// replaced, removed and torn while serve runs, tampering found by
// `certgate audit --verify`, and hostile subjects printed by the display rule.
import { appendFile, mkdir, readFile, rename, rm, stat, truncate, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCertificate } from "../../src/core/certificate.js";
import { issueDevCertificate, type IssuedCertificate } from "../../src/dev-certificates.js";
import {
  clientEnv,
  createCliFixture,
  killAll,
  run,
  runHere,
  serveAccessArgs,
  startServe,
  type CliFixture,
} from "../support/cli-harness.js";
import { waitFor } from "../support/harness.js";

let fixture: CliFixture;
let hostile: IssuedCertificate;
let cjk: IssuedCertificate;
let long: IssuedCertificate;

beforeAll(async () => {
  fixture = await createCliFixture();
  // A client certificate with a right-to-left override and a line separator
  // in its subject, one whose common name is 4,096 characters, and a
  // self-signed one whose common name is 5,000 CJK characters.
  hostile = await issueDevCertificate(fixture.pki.ca, {
    commonName: "ops\u202Egnp.exe\u2028certgate serve: stored admin",
    usages: ["client"],
  });
  long = await issueDevCertificate(fixture.pki.ca, { commonName: "L".repeat(4096), usages: ["client"] });
  cjk = await issueDevCertificate(undefined, { commonName: "語".repeat(5000), usages: ["client"] });
  for (const [name, issued] of Object.entries({ hostile, long, cjk })) {
    fixture.files[`${name}.pem`] = join(fixture.tmp, `${name}.pem`);
    fixture.files[`${name}-key.pem`] = join(fixture.tmp, `${name}-key.pem`);
    await writeFile(fixture.files[`${name}.pem`]!, issued.cert);
    await writeFile(fixture.files[`${name}-key.pem`]!, issued.key);
  }
});
afterAll(async () => {
  killAll();
  await rm(fixture.tmp, { recursive: true, force: true });
});

const sha256 = (pem: string) => parseCertificate(pem).sha256;

function serveArgs(dataDir: string, more: string[] = []): string[] {
  return ["--data-dir", join(fixture.tmp, dataDir), ...serveAccessArgs(fixture), ...more];
}

const as = (who: string, url: string) => clientEnv(fixture, who, url);

interface JsonEvent {
  sequence: string;
  action: string;
  result: string;
  certificateId?: string;
  actorSubject?: string;
}

async function auditJson(url: string): Promise<{ events: JsonEvent[]; damagedRecordsSkipped: number; stderr: string }> {
  const result = await run(["audit", "--json"], as("reader", url));
  expect(result.code, result.stderr).toBe(0);
  return {
    ...(JSON.parse(result.stdout) as { events: JsonEvent[]; damagedRecordsSkipped: number }),
    stderr: result.stderr,
  };
}

async function linesOf(file: string): Promise<string[]> {
  return (await readFile(file, "utf8")).split("\n").filter((line) => line !== "");
}

describe("certgate serve's audit trail against a refusal flood", () => {
  it("keeps every change while an unauthenticated client floods refusals with 5,000-character CJK subjects", async () => {
    const dir = join(fixture.tmp, "flood");
    const serve = await startServe(serveArgs("flood", ["--audit-attempts-max-bytes", "8192"]));
    try {
      const upload = await run(["upload", fixture.files["alice.pem"]!, "--id", "alice"], as("admin", serve.url));
      expect(upload.code, upload.stderr).toBe(0);
      for (let i = 0; i < 100; i++) {
        const refused = await runHere(["delete", "alice"], as("cjk", serve.url));
        expect(refused.code, refused.stderr).toBe(1);
      }
      const deleted = await run(["delete", "alice"], as("admin", serve.url));
      expect(deleted.code, deleted.stderr).toBe(0);
      // The 60 refusals recorded in the minute went into the queue before the
      // delete's record, which the delete waited for.
      const { events } = await auditJson(serve.url);
      expect(events.filter((e) => e.result === "ok").map((e) => [e.action, e.certificateId])).toEqual([
        ["create", "alice"],
        ["delete", "alice"],
      ]);
      // Bounded records, in their own files, rotated on their own.
      const attempts = [
        ...(await linesOf(join(dir, ".certgate-audit-attempts.1.jsonl"))),
        ...(await linesOf(join(dir, ".certgate-audit-attempts.jsonl"))),
      ];
      expect(attempts.length).toBeGreaterThan(0);
      for (const line of attempts) expect(Buffer.byteLength(line)).toBeLessThan(1024);
      expect((await stat(join(dir, ".certgate-audit-attempts.jsonl"))).size).toBeLessThanOrEqual(8192);
      const changes = await linesOf(join(dir, ".certgate-audit.jsonl"));
      expect(changes.map((line) => (JSON.parse(line) as { event: { result: string } }).event.result)).toEqual([
        "ok",
        "ok",
      ]);
      expect(events.filter((e) => e.result === "refused").at(-1)!.sequence).toBe("61");
      expect(events.at(-1)).toMatchObject({ sequence: "62", action: "delete", result: "ok" });
      const refused = events.find((e) => e.result === "refused")!;
      expect(refused.actorSubject!.endsWith("…")).toBe(true);
      expect(Buffer.byteLength(refused.actorSubject!)).toBeLessThanOrEqual(256);
      // The text listing is not padded by the subject.
      const text = await run(["audit"], as("reader", serve.url));
      expect(text.code, text.stderr).toBe(0);
      for (const line of text.stdout.trimEnd().split("\n")) expect(Array.from(line).length).toBeLessThan(260);
    } finally {
      expect(await serve.stop()).toBe(0);
    }
    const verify = await run(["audit", "--verify", "--data-dir", dir]);
    expect(verify.stdout).toMatch(/^read \d+ records in \d files/);
    expect(verify.code, verify.stdout).toBe(0);
  });
});

describe("certgate serve's audit trail when its file changes under it", () => {
  it("loses no acknowledged record when the file is renamed, replaced, torn, cut or removed", async () => {
    const dir = join(fixture.tmp, "moved");
    const file = join(dir, ".certgate-audit.jsonl");
    const serve = await startServe(serveArgs("moved"));
    let round = 0;
    // One acknowledged change, and its record in the trail at once.
    const change = async () => {
      round++;
      const result =
        round % 2 === 1
          ? await run(["upload", fixture.files["alice.pem"]!, "--id", "alice"], as("admin", serve.url))
          : await run(["delete", "alice"], as("admin", serve.url));
      expect(result.code, result.stderr).toBe(0);
      const { events } = await auditJson(serve.url);
      expect(events.at(-1), `change ${round}`).toMatchObject({
        action: round % 2 === 1 ? "create" : "delete",
        result: "ok",
        certificateId: "alice",
      });
      return events;
    };
    try {
      await change();
      // Renamed away, as logrotate does.
      await rename(file, join(dir, ".audit-archive.jsonl"));
      expect((await change()).map((e) => e.action)).toEqual(["delete"]);
      expect(await readFile(join(dir, ".audit-archive.jsonl"), "utf8")).not.toContain('"action":"delete"');
      await waitFor(
        () => /audit trail \S+: the file was removed or renamed while open/.test(serve.output().stderr),
        "the log line",
      );
      // Replaced, as sed -i and an editor's save do.
      await writeFile(`${file}.tmp`, await readFile(file));
      await rename(`${file}.tmp`, file);
      expect((await change()).map((e) => e.action)).toEqual(["delete", "create"]);
      // Garbage without a newline at the end.
      await appendFile(file, '{"v":2,"mac":"sha256","prev":"00');
      const afterGarbage = await change();
      expect(afterGarbage.map((e) => e.action)).toEqual(["delete", "create", "delete"]);
      // The last record cut in the middle.
      await truncate(file, (await stat(file)).size - 20);
      const afterCut = await change();
      expect(afterCut.map((e) => e.action)).toEqual(["delete", "create", "create"]);
      const skipped = await auditJson(serve.url);
      expect(skipped.damagedRecordsSkipped).toBe(2);
      expect(skipped.stderr).toMatch(/the store skipped 2 damaged records/);
      // Removed.
      await unlink(file);
      expect((await change()).map((e) => e.action)).toEqual(["delete"]);
    } finally {
      expect(await serve.stop()).toBe(0);
    }
    // The tampering is on record: the removal breaks the chain.
    const verify = await run(["audit", "--verify", "--data-dir", dir]);
    expect(verify.code).toBe(1);
    expect(verify.stdout).toMatch(
      /first break: line 1 of \S+ \(sequence 6\) follows a record that is not in the trail/,
    );
  });
});

describe("certgate audit --verify", () => {
  it("finds an edit, a deletion and a reordering in the trail a real serve wrote, and nothing in an untouched one", async () => {
    const dir = join(fixture.tmp, "verify");
    const file = join(dir, ".certgate-audit.jsonl");
    const keyFile = join(fixture.tmp, "audit.key");
    await writeFile(keyFile, "5f3b0a9c1d2e4f60718293a4b5c6d7e8\n");
    const serve = await startServe(serveArgs("verify", ["--audit-key-file", keyFile]));
    try {
      for (let i = 0; i < 3; i++) {
        expect((await run(["upload", fixture.files["alice.pem"]!, "--id", "alice"], as("admin", serve.url))).code).toBe(
          0,
        );
        expect((await run(["delete", "alice"], as("admin", serve.url))).code).toBe(0);
      }
      // Verifying while serve runs.
      const intact = await run(["audit", "--verify", "--data-dir", dir, "--audit-key-file", keyFile]);
      expect(intact.code, intact.stdout).toBe(0);
      expect(intact.stdout).toBe(
        "read 6 records in 1 files, sequence numbers 1 to 6\nthe trail is intact: no damaged record, no break in the chain, no gap\n",
      );
    } finally {
      expect(await serve.stop()).toBe(0);
    }
    const lines = await linesOf(file);
    const check = async (edited: string[]) => {
      await writeFile(file, edited.map((line) => `${line}\n`).join(""));
      const result = await run(["audit", "--verify", "--data-dir", dir, "--audit-key-file", keyFile]);
      expect(result.code, result.stdout).toBe(1);
      return result.stdout;
    };
    // An edit: the keyed digest no longer matches.
    const edited = await check([
      lines[0]!,
      lines[1]!.replace('"action":"delete"', '"action":"create"'),
      ...lines.slice(2),
    ]);
    expect(edited).toMatch(/first break: line 2 of \S+: digest mismatch \(edited, torn or damaged\)/);
    // A deletion.
    const deleted = await check([lines[0]!, lines[1]!, ...lines.slice(3)]);
    expect(deleted).toMatch(
      /first break: line 3 of \S+ \(sequence 4\) does not follow the record before it \(sequence 2/,
    );
    expect(deleted).toMatch(/gap: sequence number 3 is missing: a record was deleted/);
    // A reordering.
    const reordered = await check([lines[0]!, lines[2]!, lines[1]!, ...lines.slice(3)]);
    expect(reordered).toMatch(/first break: line 2 of \S+ \(sequence 3\) does not follow/);
    expect(reordered).toMatch(/order: line 3 of \S+ \(sequence 2\) comes after sequence 3/);
    // Without the key, keyed digests cannot be checked; it says so.
    await writeFile(file, lines.map((line) => `${line}\n`).join(""));
    const keyless = await run(["audit", "--verify", "--data-dir", dir]);
    expect(keyless.code).toBe(0);
    expect(keyless.stdout).toMatch(
      /unchecked: 6 keyed records of the changes trail could not be checked: give the audit key/,
    );
  });
});

describe("certgate's display rule for hostile subjects", () => {
  it("prints a U+202E / U+2028 subject escaped and a 4,096-character subject shortened in upload, list, get and audit", async () => {
    const serve = await startServe(
      serveArgs("display", ["--admin", sha256(hostile.cert), "--admin", sha256(long.cert)]),
    );
    try {
      const outputs: string[] = [];
      const uploadHostile = await run(
        ["upload", fixture.files["hostile.pem"]!, "--id", "hostile"],
        as("hostile", serve.url),
      );
      expect(uploadHostile.code, uploadHostile.stderr).toBe(0);
      const uploadLong = await run(["upload", fixture.files["long.pem"]!, "--id", "long"], as("long", serve.url));
      expect(uploadLong.code, uploadLong.stderr).toBe(0);
      outputs.push(uploadHostile.stdout, uploadLong.stdout);
      expect(uploadHostile.stdout).toContain("CN=ops\\u202egnp.exe\\u2028certgate serve: stored admin");
      const list = await run(["list"], as("reader", serve.url));
      const getHostile = await run(["get", "hostile"], as("reader", serve.url));
      const getLong = await run(["get", "long"], as("reader", serve.url));
      const audit = await run(["audit"], as("reader", serve.url));
      for (const result of [list, getHostile, getLong, audit]) {
        expect(result.code, result.stderr).toBe(0);
        outputs.push(result.stdout);
      }
      expect(getHostile.stdout).toMatch(/^ {2}Subject: +CN=ops\\u202egnp\.exe\\u2028certgate serve: stored admin$/m);
      expect(getLong.stdout).toMatch(/^ {2}Subject: +CN=L+…$/m);
      expect(audit.stdout).toContain("CN=ops\\u202egnp.exe\\u2028certgate serve: stored admin ");
      expect(audit.stdout).toMatch(/ CN=L{56}… [0-9A-F]{16}…/);
      for (const text of outputs) {
        expect(text).not.toMatch(/[\u202e\u2028]/);
        for (const line of text.split("\n")) expect(Array.from(line).length).toBeLessThan(300);
      }
      // The audit table is not padded to the 4,096 characters.
      const rows = audit.stdout.trimEnd().split("\n");
      expect(rows).toHaveLength(3);
      // --json keeps the subject as stored.
      const json = await run(["get", "hostile", "--json"], as("reader", serve.url));
      expect((JSON.parse(json.stdout) as { subject: string }).subject).toContain("\u202e");
    } finally {
      expect(await serve.stop()).toBe(0);
    }
  });

  it("logs a data-folder file name with a newline or ESC as one escaped line in --log-format text", async () => {
    const dir = join(fixture.tmp, "names");
    await mkdir(dir, { recursive: true });
    const name = "evil\ncertgate serve: stored admin\u001b[2K.pem";
    await writeFile(join(dir, name), "not a certificate");
    const serve = await startServe(serveArgs("names"));
    try {
      await waitFor(() => /skipped /.test(serve.output().stderr), "the skipped file to be logged");
      const { stderr } = serve.output();
      expect(stderr).toContain("evil\\ncertgate serve: stored admin\\x1b[2K.pem");
      expect(stderr).not.toContain("\u001b");
      for (const line of stderr.trimEnd().split("\n")) expect(line).toMatch(/^certgate serve: /);
      expect(stderr).not.toMatch(/^certgate serve: stored admin/m);
    } finally {
      expect(await serve.stop()).toBe(0);
    }
  });
});
