// The folder store's audit trail file: checksummed JSON lines, fsync'd,
// rotated, and a torn last line after a crash skipped with a warning.
import { appendFile, mkdtemp, readFile, rm, stat, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { AuditRecord } from "../src/core/audit.js";
import {
  auditFileName,
  auditPreviousFileName,
  createAuditFile,
  formatAuditLine,
  parseAuditLine,
} from "../src/stores/directory/audit-file.js";
import { createDirectoryStore, type DirectoryStoreProblem } from "../src/stores/directory-store.js";

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
