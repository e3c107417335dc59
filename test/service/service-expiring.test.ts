import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { timestampFromDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCertificate } from "../../src/core/certificate.js";
import { issueDevCertificate } from "../../src/dev-certificates.js";
import { readValidity } from "../../src/core/certificate-validity.js";
import { createExpiryFilter } from "../../src/service/expiring.js";
import type { StoredCertificate, WritableCertificateStore } from "../../src/core/store.js";
import { createDirectoryStore } from "../../src/stores/directory-store.js";
import { createMemoryStore } from "../../src/stores/memory-store.js";
import { codeOf, createServicePki, startService, storeClient, type ServicePki } from "../support/service-harness.js";

const day = 86_400_000;
const now = Date.now();
// Ids in an order unlike the expiry order.
const expiries: Record<string, number> = {
  "a-in-40-days": 40,
  "b-in-5-days": 5,
  "c-expired": -1,
  "d-in-400-days": 400,
  "e-in-10-days": 10,
  "f-in-1-day": 1,
};
const within30Days = ["b-in-5-days", "c-expired", "e-in-10-days", "f-in-1-day"];

let pki: ServicePki;
const ders: Record<string, Uint8Array> = {};
let tmp: string;

beforeAll(async () => {
  pki = await createServicePki();
  tmp = await mkdtemp(join(tmpdir(), "certgate-expiring-"));
  for (const [id, days] of Object.entries(expiries)) {
    const issued = await issueDevCertificate(pki.ca, {
      commonName: id,
      usages: ["client"],
      notBefore: new Date(now - 30 * day),
      notAfter: new Date(now + days * day),
    });
    ders[id] = issued.der;
  }
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function filled(store: WritableCertificateStore): Promise<WritableCertificateStore> {
  for (const [id, der] of Object.entries(ders)) await store.put(id, der);
  return store;
}

const stores: Record<string, () => Promise<WritableCertificateStore>> = {
  memory: async () => filled(createMemoryStore()),
  folder: async () =>
    filled(await createDirectoryStore({ directory: await mkdtemp(join(tmp, "store-")), onProblem: () => undefined })),
};

describe.each(Object.keys(stores))("ListCertificates expires_before (%s store)", (kind) => {
  let store: WritableCertificateStore;
  let service: Awaited<ReturnType<typeof startService>>;
  beforeAll(async () => {
    store = await stores[kind]!();
    service = await startService(pki, store);
  });
  afterAll(async () => {
    await service.close();
    await store.close();
  });

  it("lists only the certificates expiring before the time, expired ones included, ordered by id", async () => {
    const client = storeClient(service, pki, pki.reader);
    const page = await client.listCertificates({ expiresBefore: timestampFromMs(now + 30 * day) });
    expect(page.certificates.map((c) => c.certificateId)).toEqual(within30Days);
    expect(page.nextPageToken).toBe("");
    // Without the filter, everything.
    const all = await client.listCertificates({});
    expect(all.certificates.map((c) => c.certificateId)).toEqual(Object.keys(expiries));
    // A time before every expiry: nothing.
    const none = await client.listCertificates({ expiresBefore: timestampFromMs(now - 2 * day) });
    expect(none.certificates).toEqual([]);
  });

  it("pages through the filtered list with page_size 1, missing and repeating nothing", async () => {
    const client = storeClient(service, pki, pki.reader, "grpc");
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await client.listCertificates({
        pageSize: 1,
        pageToken,
        expiresBefore: timestampFromMs(now + 30 * day),
      });
      expect(page.certificates.length).toBeLessThanOrEqual(1);
      seen.push(...page.certificates.map((c) => c.certificateId));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    expect(seen).toEqual(within30Days);
  });

  it("refuses an out-of-range timestamp (InvalidArgument), and a client on no list (Unauthenticated)", async () => {
    const reader = storeClient(service, pki, pki.reader);
    expect(await codeOf(reader.listCertificates({ expiresBefore: { seconds: 999_999_999_999n, nanos: 0 } }))).toBe(
      Code.InvalidArgument,
    );
    expect(await codeOf(reader.listCertificates({ expiresBefore: { seconds: 0n, nanos: -1 } }))).toBe(
      Code.InvalidArgument,
    );
    const stranger = storeClient(service, pki, pki.stranger);
    expect(await codeOf(stranger.listCertificates({ expiresBefore: timestampFromDate(new Date()) }))).toBe(
      Code.Unauthenticated,
    );
  });
});

describe("createExpiryFilter()", () => {
  it("examines at most scanLimit certificates per page, and the pages together hold every match", async () => {
    const store = await filled(createMemoryStore());
    const listed: number[] = [];
    const counting: WritableCertificateStore = Object.assign(Object.create(store) as WritableCertificateStore, {
      async list(options: { after?: string; limit: number }) {
        const page = await store.list(options);
        listed.push(page.length);
        return page;
      },
    });
    const filter = createExpiryFilter({ store: counting, scanLimit: 2 });
    const seen: string[] = [];
    let after: string | undefined;
    let calls = 0;
    do {
      const page = await filter.page({ after, size: 10, before: now + 30 * day });
      seen.push(...page.certificates.map((c) => c.id));
      after = page.nextAfter;
      calls++;
    } while (after !== undefined);
    expect(seen).toEqual(within30Days);
    expect(Math.max(...listed)).toBeLessThanOrEqual(2);
    expect(calls).toBeGreaterThanOrEqual(3);
    await store.close();
  });

  it("passes the bound to the store as a hint and trusts a notAfter the store keeps", async () => {
    const store = await filled(createMemoryStore());
    const hints: (Date | undefined)[] = [];
    // A store with a notAfter column: it says every certificate expires at
    // the epoch, so all of them match, whatever their DER says.
    const withColumn: WritableCertificateStore = Object.assign(Object.create(store) as WritableCertificateStore, {
      async list(options: { after?: string; limit: number; expiresBefore?: Date }): Promise<StoredCertificate[]> {
        hints.push(options.expiresBefore);
        return (await store.list(options)).map((s) => ({ ...s, notAfter: new Date(0) }));
      },
    });
    const page = await createExpiryFilter({ store: withColumn }).page({ after: undefined, size: 10, before: now });
    expect(page.certificates.map((c) => c.id)).toEqual(Object.keys(expiries));
    expect(hints[0]?.getTime()).toBe(now);
    await store.close();
  });
});

describe("readValidity()", () => {
  it("reads the validity window as the full parser does, UTCTime and GeneralizedTime alike", async () => {
    const windows: [Date, Date][] = [
      [new Date("2020-02-29T12:34:56Z"), new Date("2049-12-31T23:59:59Z")], // UTCTime both
      [new Date("1999-01-01T00:00:00Z"), new Date("2050-01-01T00:00:00Z")], // GeneralizedTime from 2050
      [new Date(now - day), new Date("9999-12-31T23:59:59Z")],
    ];
    for (const [notBefore, notAfter] of windows) {
      const issued = await issueDevCertificate(pki.ca, { commonName: "window", notBefore, notAfter });
      const parsed = parseCertificate(issued.der);
      expect(readValidity(issued.der)).toEqual({ notBefore: parsed.notBefore, notAfter: parsed.notAfter });
      expect(readValidity(issued.der).notAfter.getTime()).toBe(notAfter.getTime());
    }
  });

  it("throws a RangeError on what is not a certificate", () => {
    for (const junk of [
      new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x01]),
      new Uint8Array([0x30, 0x82, 0x01]),
      new Uint8Array(0),
    ]) {
      expect(() => readValidity(junk)).toThrow(RangeError);
    }
  });
});
