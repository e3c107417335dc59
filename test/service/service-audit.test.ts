// The audit trail of the certificate store service (ListAuditEvents) on each
// backend: memory, folder and PostgreSQL (skipped without a server).
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import type { AuditEvent } from "../../src/gen/certgate/v1/certificate_store_pb.js";
import type { WritableCertificateStore } from "../../src/core/store.js";
import { parseCertificate } from "../../src/core/certificate.js";
import { createDirectoryStore } from "../../src/stores/directory-store.js";
import { formatAuditLine } from "../../src/stores/directory/audit-line.js";
import { createMemoryStore } from "../../src/stores/memory-store.js";
import { createMemoryAuditLog } from "../../src/stores/memory-audit-log.js";
import { createPostgresStore } from "../../src/stores/postgres/postgres-store.js";
import {
  codeOf,
  createServicePki,
  sha256Of,
  startService,
  storeClient,
  type RunningService,
  type ServicePki,
} from "../support/service-harness.js";
import { createTestDatabase, postgresSkipReason, type TestDatabase } from "../support/postgres.js";
import { waitFor } from "../support/harness.js";

const pgSkip = await postgresSkipReason();
let pki: ServicePki;
let tmp: string;
let db: TestDatabase | undefined;

beforeAll(async () => {
  [pki, tmp] = await Promise.all([createServicePki(), mkdtemp(join(tmpdir(), "certgate-audit-"))]);
  if (pgSkip === undefined) db = await createTestDatabase();
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
  await db?.drop();
});

const subjectOf = (issued: { der: Uint8Array }) =>
  parseCertificate(issued.der)
    .subject.split("\n")
    .filter((p) => p !== "")
    .join(", ");

let folders = 0;
const backends: { name: string; skip: boolean; open: () => Promise<WritableCertificateStore> }[] = [
  { name: "memory", skip: false, open: async () => createMemoryStore() },
  {
    name: "folder",
    skip: false,
    open: () =>
      createDirectoryStore({ directory: tmp, watch: false })
        .then((s) => s)
        .finally(() => folders++),
  },
  {
    name: "PostgreSQL",
    skip: pgSkip !== undefined,
    open: () => createPostgresStore({ connectionString: db!.url, schema: "audit", catchUpIntervalMs: 100 }),
  },
];

// Reads every event through the pages.
async function allEvents(
  service: RunningService,
  request: {
    certificateId?: string;
    startTime?: ReturnType<typeof timestampFromMs>;
    endTime?: ReturnType<typeof timestampFromMs>;
  } = {},
  pageSize = 2,
) {
  const client = storeClient(service, pki, pki.reader);
  const events: AuditEvent[] = [];
  let pageToken = "";
  let pages = 0;
  do {
    const page = await client.listAuditEvents({ pageSize, pageToken, ...request });
    expect(page.events.length).toBeLessThanOrEqual(pageSize);
    events.push(...page.events);
    pageToken = page.nextPageToken;
    pages++;
  } while (pageToken !== "" && pages < 100);
  return { events, pages };
}

describe.each(backends)("ListAuditEvents on the $name store", ({ name, skip, open }) => {
  let store: WritableCertificateStore;
  let service: RunningService;
  // The service's clock: each test moves it, so that time filters are exact.
  let now = Date.now();
  beforeAll(async () => {
    if (skip) return;
    store = await open();
    service = await startService(pki, store, {
      clock: () => now,
      access: { admin: { thumbprints: [sha256Of(pki.admin)] }, reader: { thumbprints: [sha256Of(pki.reader)] } },
    });
  });
  afterAll(async () => {
    await service?.close();
    await store?.close();
  });

  it.skipIf(skip)(
    "records creates and deletes with the admin's subject and SHA-256, the id and the thumbprint",
    async () => {
      const admin = storeClient(service, pki, pki.admin);
      await admin.createCertificate({ certificateId: "alice", certificate: pki.alice.der });
      now += 1000;
      await admin.deleteCertificate({ certificateId: "alice" });
      const { events } = await allEvents(service, { certificateId: "alice" });
      expect(events.map((e) => [e.action, e.result, e.code])).toEqual([
        ["create", "ok", ""],
        ["delete", "ok", ""],
      ]);
      for (const event of events) {
        expect(event.actorSha256Thumbprint).toBe(sha256Of(pki.admin));
        expect(event.actorSubject).toBe(subjectOf(pki.admin));
        expect(event.sha256Thumbprint).toBe(sha256Of(pki.alice));
      }
      expect(events[1]!.time!.seconds - events[0]!.time!.seconds).toBe(1n);
      expect(events[1]!.sequence).toBeGreaterThan(events[0]!.sequence);
    },
  );

  it.skipIf(skip)(
    "refuses a reader's write, changes nothing, and records the refusal with the reader as actor",
    async () => {
      now += 1000;
      const reader = storeClient(service, pki, pki.reader);
      expect(await codeOf(reader.createCertificate({ certificateId: "by-reader", certificate: pki.bob.der }))).toBe(
        Code.PermissionDenied,
      );
      expect(await store.get("by-reader")).toBeUndefined();
      const stranger = storeClient(service, pki, pki.stranger);
      expect(await codeOf(stranger.deleteCertificate({ certificateId: "alice" }))).toBe(Code.Unauthenticated);
      // Refusals by the access gate are recorded without delaying the refusal.
      let refused: AuditEvent[] = [];
      await waitFor(async () => {
        const { events } = await allEvents(service, { startTime: timestampFromMs(now) });
        refused = events.filter((e) => e.result === "refused");
        return refused.length >= 2;
      }, "both refusals to be recorded");
      expect(refused.map((e) => [e.action, e.code, e.actorSha256Thumbprint, e.certificateId])).toEqual([
        ["create", "permission_denied", sha256Of(pki.reader), ""],
        ["delete", "unauthenticated", sha256Of(pki.stranger), ""],
      ]);
    },
  );

  it.skipIf(skip)(
    "records refused admin writes: an invalid upload, a private key, a taken id, an unknown id",
    async () => {
      now += 60_000;
      const since = now;
      const admin = storeClient(service, pki, pki.admin);
      await admin.createCertificate({ certificateId: "bob", certificate: pki.bob.der });
      const refusals = [
        () => admin.createCertificate({ certificateId: "junk", certificate: new Uint8Array([0x30, 0x03, 1, 2, 3]) }),
        () => admin.createCertificate({ certificateId: "secret", certificate: new TextEncoder().encode(pki.bob.key) }),
        () => admin.createCertificate({ certificateId: "bob", certificate: pki.alice.der }),
        () => admin.deleteCertificate({ certificateId: "nobody" }),
        () => admin.createCertificate({ certificateId: "bad\u0000id", certificate: pki.alice.der }),
      ];
      for (const call of refusals) expect(await codeOf(call())).not.toBe("ok");
      const { events } = await allEvents(service, { startTime: timestampFromMs(since) }, 1000);
      expect(events.map((e) => [e.action, e.result, e.code, e.certificateId])).toEqual([
        ["create", "ok", "", "bob"],
        ["create", "refused", "invalid_argument", "junk"],
        ["create", "refused", "invalid_argument", "secret"],
        ["create", "refused", "already_exists", "bob"],
        ["delete", "refused", "not_found", "nobody"],
        ["create", "refused", "invalid_argument", "bad\ufffdid"],
      ]);
      expect(events[3]!.sha256Thumbprint).toBe(sha256Of(pki.alice));
      expect(events[2]!.reason).toMatch(/private key/);
      expect(events.map((e) => e.reason).join("\n")).not.toContain("PRIVATE KEY-----");
    },
  );

  it.skipIf(skip)("pages with tokens, oldest first, and filters by certificate id and time range", async () => {
    const { events, pages } = await allEvents(service, {}, 2);
    expect(events.length).toBeGreaterThanOrEqual(10);
    expect(pages).toBe(Math.ceil(events.length / 2));
    const sequences = events.map((e) => e.sequence);
    expect([...sequences].sort((a, b) => (a < b ? -1 : 1))).toEqual(sequences);
    expect(new Set(sequences).size).toBe(sequences.length);
    const whole = await allEvents(service, {}, 1000);
    expect(whole.events).toEqual(events);
    // A time range: [start, end).
    const start = events[2]!.time!;
    const end = events[events.length - 1]!.time!;
    const ranged = await allEvents(service, { startTime: start, endTime: end }, 3);
    expect(ranged.events.length).toBeGreaterThan(0);
    for (const e of ranged.events) {
      expect(e.time!.seconds >= start.seconds && e.time!.seconds < end.seconds).toBe(true);
    }
    expect(ranged.events).toEqual(
      events.filter((e) => e.time!.seconds >= start.seconds && e.time!.seconds < end.seconds),
    );
    const bob = await allEvents(service, { certificateId: "bob" });
    expect(bob.events.map((e) => e.result)).toEqual(["ok", "refused"]);
    expect((await allEvents(service, { certificateId: "never-named" })).events).toEqual([]);
  });

  it.skipIf(skip)("refuses a page token it did not make, and a negative page size", async () => {
    const reader = storeClient(service, pki, pki.reader);
    expect(await codeOf(reader.listAuditEvents({ pageToken: "bm90IGEgdG9rZW4" }))).toBe(Code.InvalidArgument);
    expect(await codeOf(reader.listAuditEvents({ pageSize: -1 }))).toBe(Code.InvalidArgument);
    expect(await codeOf(storeClient(service, pki, undefined).listAuditEvents({}))).toBe(Code.Unauthenticated);
  });

  it.skipIf(skip || name === "memory")("keeps the trail when the store is opened again", async () => {
    const before = await allEvents(service, {}, 1000);
    await service.close();
    await store.close();
    store = await open();
    service = await startService(pki, store, { clock: () => now });
    const after = await allEvents(service, {}, 1000);
    expect(after.events).toEqual(before.events);
    await storeClient(service, pki, pki.admin).deleteCertificate({ certificateId: "bob" });
    const more = await allEvents(service, {}, 1000);
    expect(more.events.slice(0, -1)).toEqual(before.events);
    expect(more.events.at(-1)!.sequence).toBeGreaterThan(before.events.at(-1)!.sequence);
  });
});

describe("createCertificateStoreService() audit options", () => {
  it("records refusals by the access gate at most auditRefusalsPerMinute, then one suppressed record with the count", async () => {
    const store = createMemoryStore();
    const service = await startService(pki, store, { auditRefusalsPerMinute: 2 });
    const reader = storeClient(service, pki, pki.reader);
    for (let i = 0; i < 5; i++) {
      expect(await codeOf(reader.deleteCertificate({ certificateId: "x" }))).toBe(Code.PermissionDenied);
    }
    await service.close();
    const { events } = await store.audit!.list({ limit: 100 });
    expect(events.map((e) => e.result)).toEqual(["refused", "refused", "suppressed"]);
    expect(events[2]!.reason).toMatch(/^3 more refused delete attempts/);
    await store.close();
  });

  it("keeps the trail in a log it is given, and none with audit: false", async () => {
    const log = createMemoryAuditLog();
    const store = createMemoryStore();
    const service = await startService(pki, store, { audit: log });
    await storeClient(service, pki, pki.admin).createCertificate({
      certificateId: "alice",
      certificate: pki.alice.der,
    });
    await storeClient(service, pki, pki.admin).deleteCertificate({ certificateId: "alice" });
    await service.close();
    const { events } = await log.list({ limit: 10 });
    expect(events.map((e) => [e.action, e.result, e.certificateId, e.sha256])).toEqual([
      ["create", "ok", "alice", sha256Of(pki.alice)],
      ["delete", "ok", "alice", sha256Of(pki.alice)],
    ]);
    expect((await store.audit!.list({ limit: 10 })).events).toEqual([]);
    const none = await startService(pki, store, { audit: false });
    expect(await codeOf(storeClient(none, pki, pki.reader).listAuditEvents({}))).toBe(Code.Unimplemented);
    await none.close();
    await store.close();
  });
});

describe("ListAuditEvents on a folder store with a long trail", () => {
  it("answers an admin's write while ten listings scan the whole trail", async () => {
    const directory = await mkdtemp(join(tmp, "long-"));
    // 10,000 records written directly, chained as the store writes them.
    const lines: string[] = [];
    let prev: string | undefined;
    for (let i = 1; i <= 10_000; i++) {
      const { line, digest } = formatAuditLine(
        {
          sequence: i,
          time: new Date(),
          action: "create",
          result: "ok",
          code: "",
          reason: "",
          actor: { subject: "CN=admin", sha256: sha256Of(pki.admin) },
          certificateId: `id-${i}`,
          sha256: sha256Of(pki.alice),
        },
        prev,
      );
      lines.push(line);
      prev = digest;
    }
    await writeFile(join(directory, ".certgate-audit.jsonl"), lines.join(""));
    const store = await createDirectoryStore({ directory, watch: false });
    const service = await startService(pki, store);
    try {
      const reader = storeClient(service, pki, pki.reader);
      const admin = storeClient(service, pki, pki.admin);
      // Opens the trail and the connections first.
      await reader.listAuditEvents({ pageSize: 1 });
      await admin.listCertificates({});
      const done: string[] = [];
      const listings = Array.from({ length: 10 }, (_, i) =>
        reader
          .listAuditEvents({ pageSize: 1000, certificateId: "never-named" })
          .then((page) => done.push(`list-${i}:${page.events.length}`)),
      );
      const write = admin
        .createCertificate({ certificateId: "urgent", certificate: pki.alice.der })
        .then(() => done.push("write"));
      await Promise.all([...listings, write]);
      // A write queued behind the listings would finish last.
      expect(done.indexOf("write")).toBeLessThan(5);
      expect(done.filter((d) => d.startsWith("list-")).every((d) => d.endsWith(":0"))).toBe(true);
      const page = await reader.listAuditEvents({ certificateId: "urgent" });
      expect(page.events.map((e) => [e.sequence, e.action, e.result])).toEqual([[10_001n, "create", "ok"]]);
    } finally {
      await service.close();
      await store.close();
    }
  }, 60_000);
});

describe("createMemoryAuditLog()", () => {
  it("keeps changes apart from refusals: a flood of refusals never pushes a change out", async () => {
    const log = createMemoryAuditLog({ maxEvents: 3 });
    const at = new Date();
    const actor = { subject: "CN=x", sha256: "A".repeat(64) };
    await log.record({
      time: at,
      action: "create",
      result: "ok",
      code: "",
      reason: "",
      actor,
      certificateId: "a",
      sha256: "",
    });
    for (let i = 0; i < 50; i++) {
      await log.record({
        time: at,
        action: "delete",
        result: "refused",
        code: "unauthenticated",
        reason: "not_allowed",
        actor,
        certificateId: "",
        sha256: "",
      });
    }
    const { events } = await log.list({ limit: 100 });
    expect(events.map((e) => [e.sequence, e.result])).toEqual([
      [1, "ok"],
      [49, "refused"],
      [50, "refused"],
      [51, "refused"],
    ]);
  });
});
