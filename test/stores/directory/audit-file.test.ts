// The folder store's audit trail file: checksummed JSON lines, fsync'd,
// rotated, and a torn last line after a crash skipped with a warning.
import { createHash } from "node:crypto";
import { appendFile, mkdir, mkdtemp, readFile, rename, rm, stat, truncate, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { AuditRecord } from "../../../src/core/audit.js";
import {
  auditAttemptsFileName,
  auditAttemptsPreviousFileName,
  auditFileName,
  auditPreviousFileName,
  createAuditFile,
  type AuditFile,
  formatAuditLine,
  parseAuditLine,
} from "../../../src/stores/directory/audit-file.js";
import { createDevCa, issueDevCertificate } from "../../../src/dev-certificates.js";
import { verifyAuditTrail } from "../../../src/stores/directory/audit-verify.js";
import { createDirectoryStore, type DirectoryStoreProblem } from "../../../src/stores/directory-store.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "certgate-audit-file-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const record = (certificateId: string, time = new Date("2026-05-01T12:00:00Z")): AuditRecord => ({
  time,
  action: "create",
  result: "ok",
  code: "",
  reason: "",
  actor: { subject: 'CN=admin, O=Contoso \u2603 "quoted"', sha256: "A".repeat(64) },
  certificateId,
  sha256: "B".repeat(64),
});

function open(maxBytes = 1024 * 1024, warnings: string[] = []) {
  return createAuditFile({
    directory: dir,
    maxBytes,
    onDamagedLine: (file, line, reason) => warnings.push(`${file}:${line}: ${reason}`),
  });
}

describe("formatAuditLine() and parseAuditLine()", () => {
  it("round-trips an event as one JSON line", () => {
    const { line, digest } = formatAuditLine({ ...record("alice"), sequence: 7 });
    expect(line.endsWith("\n")).toBe(true);
    expect(line.slice(0, -1)).not.toContain("\n");
    expect(JSON.parse(line)).toMatchObject({ event: { seq: 7, id: "alice", action: "create" } });
    expect(parseAuditLine(line.slice(0, -1))).toMatchObject({
      kind: "record",
      event: { ...record("alice"), sequence: 7 },
      digest,
      prev: "0".repeat(64),
    });
  });

  it("refuses a torn line, a changed byte and a line that is not a record", () => {
    const line = formatAuditLine({ ...record("alice"), sequence: 7 }).line.slice(0, -1);
    expect(parseAuditLine(line.slice(0, line.length - 5))).toMatchObject({ kind: "damaged" });
    expect(parseAuditLine(line.replace('"alice"', '"alicf"'))).toEqual({
      kind: "damaged",
      reason: "digest mismatch (edited, torn or damaged)",
    });
    expect(parseAuditLine('{"hello":"world"}')).toMatchObject({ kind: "damaged" });
    expect(parseAuditLine("")).toMatchObject({ kind: "damaged" });
  });
});

describe("createAuditFile()", () => {
  it("appends records that a new instance reads back, numbering on where the file ended", async () => {
    const first = open();
    await first.record(record("a"));
    await first.record(record("b"));
    await first.close();
    const second = open();
    await second.record(record("c"));
    const { events, more } = await second.list({ limit: 10 });
    expect(more).toBe(false);
    expect(events.map((e) => [e.sequence, e.certificateId])).toEqual([
      [1, "a"],
      [2, "b"],
      [3, "c"],
    ]);
    await second.close();
    expect((await stat(join(dir, auditFileName))).mode & 0o777).toBe(0o600);
  });

  it("skips a torn last line with a warning, keeps every record before it, and appends after it", async () => {
    const log = open();
    for (const id of ["a", "b", "c"]) await log.record(record(id));
    await log.close();
    // A crash in the middle of the fourth record's write.
    const torn = formatAuditLine({ ...record("d"), sequence: 4 }).line;
    await appendFile(join(dir, auditFileName), torn.slice(0, 40));
    const warnings: string[] = [];
    const again = open(1024 * 1024, warnings);
    await again.record(record("e"));
    expect(warnings).toEqual([`${join(dir, auditFileName)}:4: not a complete record (torn or damaged)`]);
    const { events } = await again.list({ limit: 10 });
    expect(events.map((e) => [e.sequence, e.certificateId])).toEqual([
      [1, "a"],
      [2, "b"],
      [3, "c"],
      [4, "e"],
    ]);
    await again.close();
    // The torn line stays on its own line, so every later line parses.
    const lines = (await readFile(join(dir, auditFileName), "utf8")).split("\n");
    expect(lines[3]).toBe(torn.slice(0, 40));
    expect(parseAuditLine(lines[4]!)).toMatchObject({ event: { certificateId: "e" } });
  });

  it("skips a damaged line in the middle and a file cut anywhere, never failing to open", async () => {
    const log = open();
    for (const id of ["a", "b", "c"]) await log.record(record(id));
    await log.close();
    const file = join(dir, auditFileName);
    const text = await readFile(file, "utf8");
    await writeFile(file, text.replace('"id":"b"', '"id":"x"'));
    const warnings: string[] = [];
    const damaged = open(1024 * 1024, warnings);
    expect((await damaged.list({ limit: 10 })).events.map((e) => e.certificateId)).toEqual(["a", "c"]);
    expect(warnings).toEqual([`${file}:2: digest mismatch (edited, torn or damaged)`]);
    await damaged.close();
    for (const size of [1, 57, text.length - 1]) {
      await writeFile(file, text);
      await truncate(file, size);
      const cut = open(1024 * 1024, []);
      await cut.record(record("z"));
      const ids = (await cut.list({ limit: 10 })).events.map((e) => e.certificateId);
      expect(ids.at(-1), `cut at ${size}`).toBe("z");
      await cut.close();
    }
  });

  it("rotates before maxBytes into the previous file, lists both, and drops the one before", async () => {
    const line = formatAuditLine({ ...record("r-000"), sequence: 1 }).line.length;
    const log = open(line * 3 + 10);
    for (let i = 0; i < 10; i++) await log.record(record(`r-${String(i).padStart(3, "0")}`));
    const current = (await stat(join(dir, auditFileName))).size;
    const previous = (await stat(join(dir, auditPreviousFileName))).size;
    expect(current).toBeLessThanOrEqual(line * 3 + 10);
    expect(previous).toBeLessThanOrEqual(line * 3 + 10);
    const { events } = await log.list({ limit: 100 });
    // The newest 4 to 6 records, in order, numbered on.
    expect(events.map((e) => e.sequence)).toEqual([7, 8, 9, 10]);
    await log.close();
  });

  it("pages after a sequence number and filters by id and time", async () => {
    const log = open();
    const t0 = Date.parse("2026-05-01T12:00:00Z");
    for (let i = 0; i < 6; i++) await log.record(record(i % 2 === 0 ? "even" : "odd", new Date(t0 + i * 1000)));
    const first = await log.list({ limit: 2 });
    expect(first.more).toBe(true);
    const next = await log.list({ limit: 2, after: first.events[1]!.sequence });
    expect(next.events.map((e) => e.sequence)).toEqual([3, 4]);
    expect((await log.list({ limit: 10, certificateId: "odd" })).events.map((e) => e.sequence)).toEqual([2, 4, 6]);
    const ranged = await log.list({ limit: 10, since: new Date(t0 + 2000), until: new Date(t0 + 4000) });
    expect(ranged.events.map((e) => e.sequence)).toEqual([3, 4]);
    await log.close();
  });
});

describe("createDirectoryStore() audit", () => {
  it("reports a torn audit line as an audit_record problem, and never loads the audit file as a certificate", async () => {
    await writeFile(join(dir, auditFileName), `${formatAuditLine({ ...record("a"), sequence: 1 }).line}{"sum":"`);
    const problems: DirectoryStoreProblem[] = [];
    const store = await createDirectoryStore({ directory: dir, watch: false, onProblem: (p) => problems.push(p) });
    expect(problems).toEqual([]);
    expect((await store.audit.list({ limit: 10 })).events.map((e) => e.certificateId)).toEqual(["a"]);
    expect(problems.map((p) => [p.code, p.file, p.reason])).toEqual([
      ["audit_record", auditFileName, "line 2 of the audit trail: not a complete record (torn or damaged)"],
    ]);
    expect(store.stats().files).toBe(0);
    await store.close();
  });
});

const refusal = (i: number): AuditRecord => ({
  time: new Date("2026-05-01T12:00:00Z"),
  action: "delete",
  result: "refused",
  code: "unauthenticated",
  reason: "not_allowed",
  actor: { subject: `CN=${"語".repeat(80)}`, sha256: String(i).padStart(64, "0") },
  certificateId: "",
  sha256: "",
});

const ids = async (log: { list: AuditFile["list"] }) =>
  (await log.list({ limit: 1000 })).events.map((e) => e.certificateId || e.result);

describe("createAuditFile() keeps changes apart from refusals", () => {
  it("rotates a flood of refusals on its own: every change survives, the newest refusals are kept", async () => {
    const notes: string[] = [];
    const log = createAuditFile({
      directory: dir,
      maxBytes: 1024 * 1024,
      attemptsMaxBytes: 4096,
      onDamagedLine() {},
      onFileChanged: (file, reason) => notes.push(`${file}: ${reason}`),
    });
    await log.record(record("first-change"));
    for (let i = 0; i < 200; i++) await log.record(refusal(i));
    await log.record(record("last-change"));
    const { events } = await log.list({ limit: 1000 });
    expect(events.filter((e) => e.result === "ok").map((e) => e.certificateId)).toEqual([
      "first-change",
      "last-change",
    ]);
    const refused = events.filter((e) => e.result === "refused");
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.length).toBeLessThan(200);
    // The newest refusals, in order; the sequence numbers are shared.
    expect(refused.at(-1)!.sequence).toBe(201);
    expect(events.at(-1)).toMatchObject({ certificateId: "last-change", sequence: 202 });
    expect((await stat(join(dir, auditAttemptsFileName))).size).toBeLessThanOrEqual(4096);
    expect((await stat(join(dir, auditAttemptsPreviousFileName))).size).toBeLessThanOrEqual(4096);
    // Each rotation says how many refusals it dropped; the changes never rotated.
    expect(notes.length).toBeGreaterThan(2);
    expect(notes[0]).toMatch(
      /attempts\.jsonl: rotated into \.certgate-audit-attempts\.1\.jsonl; 0 older records of refused and failed attempts dropped$/,
    );
    const dropped = notes.map((n) => Number(/; (\d+) older/.exec(n)![1]));
    expect(dropped.reduce((a, b) => a + b, 0) + refused.length).toBe(200);
    await log.close();
    const report = await verifyAuditTrail({ directory: dir });
    expect(report.problems).toEqual([]);
  });
});

describe("createAuditFile() when the file changes under it", () => {
  const file = () => join(dir, auditFileName);

  it("writes to the path again after the file was renamed away (mv, logrotate)", async () => {
    const changes: string[] = [];
    const log = createAuditFile({
      directory: dir,
      maxBytes: 1024 * 1024,
      onDamagedLine() {},
      onFileChanged: (f, reason) => changes.push(`${f}: ${reason}`),
    });
    await log.record(record("a"));
    await rename(file(), join(dir, "archived.jsonl"));
    await log.record(record("b"));
    expect(await ids(log)).toEqual(["b"]);
    expect(await readFile(join(dir, "archived.jsonl"), "utf8")).not.toContain('"id":"b"');
    expect(changes).toEqual([`${file()}: the file was removed or renamed while open: a new file was created`]);
    await log.close();
  });

  it("writes to the new file after the file was replaced (sed -i, an editor's save)", async () => {
    const log = open();
    await log.record(record("a"));
    const text = await readFile(file(), "utf8");
    await writeFile(join(dir, "tmp"), text);
    await rename(join(dir, "tmp"), file());
    await log.record(record("b"));
    expect(await ids(log)).toEqual(["a", "b"]);
    await log.close();
    expect((await verifyAuditTrail({ directory: dir })).problems).toEqual([]);
  });

  it("creates the file again after it was removed, and verify reports the removal", async () => {
    const log = open();
    await log.record(record("a"));
    await log.record(record("b"));
    await unlink(file());
    await log.record(record("c"));
    expect(await ids(log)).toEqual(["c"]);
    await log.close();
    const report = await verifyAuditTrail({ directory: dir });
    expect(report.problems.map((p) => p.kind)).toEqual(["break"]);
    expect(report.problems[0]!.message).toMatch(
      /line 1 of .* \(sequence 3\) follows a record that is not in the trail/,
    );
  });

  it("seals a tail torn while it is open (garbage without a newline, a cut line) before the next record", async () => {
    const log = open();
    await log.record(record("a"));
    await appendFile(file(), '{"v":2,"garbage');
    await log.record(record("b"));
    const size = (await stat(file())).size;
    await truncate(file(), size - 10);
    await log.record(record("c"));
    expect(await ids(log)).toEqual(["a", "c"]);
    const { skipped } = await log.list({ limit: 10 });
    expect(skipped).toBe(2);
    await log.close();
    const lines = (await readFile(file(), "utf8")).split("\n");
    expect(parseAuditLine(lines[3]!)).toMatchObject({ kind: "record", event: { certificateId: "c" } });
    // The cut record b is a damaged line, and c does not follow a.
    const report = await verifyAuditTrail({ directory: dir });
    expect(report.problems.map((p) => p.kind)).toEqual(["damaged", "damaged", "gap"]);
  });

  it("fails the record when the file cannot be written, and writes again once it can", async () => {
    const log = open();
    await log.record(record("a"));
    await unlink(file());
    await mkdir(file());
    await expect(log.record(record("b"))).rejects.toThrow();
    await rm(file(), { recursive: true });
    await log.record(record("c"));
    expect(await ids(log)).toEqual(["c"]);
    await log.close();
  });
});

describe("verifyAuditTrail()", () => {
  async function trail(key?: Uint8Array): Promise<string[]> {
    const log = createAuditFile({ directory: dir, maxBytes: 1024 * 1024, onDamagedLine() {}, ...(key ? { key } : {}) });
    for (const id of ["a", "b", "c", "d"]) await log.record(record(id));
    await log.close();
    return (await readFile(join(dir, auditFileName), "utf8")).split("\n").filter((l) => l !== "");
  }
  const rewrite = (lines: string[]) => writeFile(join(dir, auditFileName), lines.map((l) => `${l}\n`).join(""));
  const kinds = async (key?: Uint8Array) =>
    (await verifyAuditTrail({ directory: dir, ...(key ? { key } : {}) })).problems.map((p) => p.kind);

  it("finds nothing wrong in an untouched trail", async () => {
    await trail();
    const report = await verifyAuditTrail({ directory: dir });
    expect(report).toMatchObject({ records: 4, from: 1, to: 4, unchained: 0, problems: [] });
  });

  it("catches an edited line, also with its digest recomputed", async () => {
    const lines = await trail();
    await rewrite([lines[0]!, lines[1]!.replace('"id":"b"', '"id":"x"'), lines[2]!, lines[3]!]);
    // The damaged line's sequence number is not read, hence the gap.
    expect(await kinds()).toEqual(["damaged", "gap"]);
    // Recomputing the edited line's digest breaks the link of the next one.
    const prev = JSON.parse(lines[1]!).prev as string;
    const edited = formatAuditLine({ ...record("x"), sequence: 2 }, prev).line.trimEnd();
    await rewrite([lines[0]!, edited, lines[2]!, lines[3]!]);
    expect(await kinds()).toEqual(["break"]);
  });

  it("catches a deleted line", async () => {
    const lines = await trail();
    await rewrite([lines[0]!, lines[2]!, lines[3]!]);
    const report = await verifyAuditTrail({ directory: dir });
    expect(report.problems.map((p) => p.kind)).toEqual(["break", "gap"]);
    expect(report.problems[1]!.message).toBe("sequence number 2 is missing: a record was deleted");
  });

  it("catches reordered lines", async () => {
    const lines = await trail();
    await rewrite([lines[0]!, lines[2]!, lines[1]!, lines[3]!]);
    expect(await kinds()).toEqual(["break", "break", "order", "break"]);
  });

  it("cannot see a tail rewritten with plain digests, but can with a key", async () => {
    const lines = await trail();
    const prev = JSON.parse(lines[1]!).prev as string;
    const forged = formatAuditLine({ ...record("x"), sequence: 2 }, prev);
    const next = formatAuditLine({ ...record("c"), sequence: 3 }, forged.digest);
    await rewrite([lines[0]!, forged.line.trimEnd(), next.line.trimEnd()]);
    expect(await kinds()).toEqual([]);

    await rm(dir, { recursive: true, force: true });
    await mkdir(dir);
    const key = new TextEncoder().encode("0123456789abcdef0123");
    const keyed = await trail(key);
    const keyedPrev = JSON.parse(keyed[1]!).prev as string;
    const forgedUnkeyed = formatAuditLine({ ...record("x"), sequence: 2 }, keyedPrev);
    await rewrite([keyed[0]!, forgedUnkeyed.line.trimEnd()]);
    expect(await kinds(key)).toEqual(["unkeyed"]);
    const wrongKey = formatAuditLine(
      { ...record("x"), sequence: 2 },
      keyedPrev,
      new TextEncoder().encode("a guess at the key"),
    );
    await rewrite([keyed[0]!, wrongKey.line.trimEnd()]);
    expect(await kinds(key)).toEqual(["damaged"]);
    expect(await kinds()).toEqual(["unchecked"]);
  });

  it("reads a trail written before the chain, and chains new records to it", async () => {
    // The format of the trail before the hash chain.
    const old = (id: string, seq: number) => {
      const text = JSON.stringify({
        seq,
        time: "2026-05-01T12:00:00.000Z",
        action: "create",
        result: "ok",
        code: "",
        reason: "",
        actor: { subject: "CN=admin", sha256: "A".repeat(64) },
        id,
        sha256: "B".repeat(64),
      });
      return `{"sum":"${createHash("sha256").update(text).digest("hex").slice(0, 16)}","event":${text}}\n`;
    };
    await writeFile(join(dir, auditFileName), old("a", 1) + old("b", 2));
    const log = open();
    await log.record(record("c"));
    expect((await log.list({ limit: 10 })).events.map((e) => [e.sequence, e.certificateId])).toEqual([
      [1, "a"],
      [2, "b"],
      [3, "c"],
    ]);
    await log.close();
    expect(await verifyAuditTrail({ directory: dir })).toMatchObject({ records: 3, unchained: 2, problems: [] });
    // The first chained record is bound to the last old line.
    const text = await readFile(join(dir, auditFileName), "utf8");
    await writeFile(join(dir, auditFileName), text.replace(old("b", 2), old("x", 2)));
    expect(await kinds()).toEqual(["break"]);
  });
});

describe("createAuditFile() listing", () => {
  it("never holds a write behind listings that scan the whole trail", async () => {
    // A large trail written directly: 10,000 records.
    const lines: string[] = [];
    let prev: string | undefined;
    for (let i = 1; i <= 10_000; i++) {
      const { line, digest } = formatAuditLine({ ...record(`id-${i}`), sequence: i }, prev);
      lines.push(line);
      prev = digest;
    }
    await writeFile(join(dir, auditFileName), lines.join(""));
    const log = open(64 * 1024 * 1024);
    await log.record(record("warm-up"));
    const order: string[] = [];
    const listings = Array.from({ length: 10 }, (_, i) =>
      log.list({ limit: 1000, certificateId: "absent" }).then(() => order.push(`list-${i}`)),
    );
    const write = log.record(record("revocation")).then(() => order.push("write"));
    await Promise.all([...listings, write]);
    expect(order[0]).toBe("write");
    expect((await log.list({ limit: 1, certificateId: "revocation" })).events).toHaveLength(1);
    await log.close();
  });
});

describe("createDirectoryStore() audit when the record cannot be written", () => {
  it("fails the change whose record cannot be written, so it is never acknowledged without it", async () => {
    const alice = await issueDevCertificate(await createDevCa(), { commonName: "alice", usages: ["client"] });
    const store = await createDirectoryStore({ directory: dir, watch: false });
    const actor = { subject: "CN=admin", sha256: "A".repeat(64) };
    await store.put("alice", alice.der, { actor });
    // The trail's path made unwritable: a folder where the file was.
    await unlink(join(dir, auditFileName));
    await mkdir(join(dir, auditFileName));
    await expect(store.delete("alice", { actor })).rejects.toThrow();
    await rm(join(dir, auditFileName), { recursive: true });
    await store.put("alice", alice.der, { actor });
    expect((await store.audit.list({ limit: 10 })).events.map((e) => [e.action, e.certificateId])).toEqual([
      ["create", "alice"],
    ]);
    await store.close();
  });
});
