import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import type { CertificateStoreService } from "../../src/gen/certgate/v1/certificate_store_pb.js";
import { issueDevCertificate, type IssuedCertificate } from "../../src/dev-certificates.js";
import type { WritableCertificateStore } from "../../src/core/store.js";
import { createMemoryStore } from "../../src/stores/memory-store.js";
import { createDirectoryStore } from "../../src/stores/directory-store.js";
import {
  createServicePki,
  sha1Of,
  sha256Of,
  startService,
  storeClient,
  type RunningService,
  type ServicePki,
  type StoreProtocol,
  codeOf,
} from "../support/service-harness.js";

type StoreClient = Client<typeof CertificateStoreService>;

let pki: ServicePki;
let expired: IssuedCertificate;
let notYetValid: IssuedCertificate;
let others: IssuedCertificate[];
let fresh: IssuedCertificate;

beforeAll(async () => {
  pki = await createServicePki();
  const day = 86_400_000;
  expired = await issueDevCertificate(pki.ca, {
    commonName: "expired",
    notBefore: new Date(Date.now() - 10 * day),
    notAfter: new Date(Date.now() - day),
  });
  notYetValid = await issueDevCertificate(pki.ca, {
    commonName: "future",
    notBefore: new Date(Date.now() + day),
    notAfter: new Date(Date.now() + 10 * day),
  });
  others = await Promise.all([1, 2, 3, 4, 5].map((n) => issueDevCertificate(pki.ca, { commonName: `page-${n}` })));
  fresh = await issueDevCertificate(pki.ca, { commonName: "fresh" });
});

// The store kinds the core tests run over: the reference implementation and
// the folder store that `certgate serve` uses.
const storeKinds: {
  name: string;
  create: () => Promise<{ store: WritableCertificateStore; cleanup(): Promise<void> }>;
}[] = [
  {
    name: "memory store",
    create: () => {
      const store = createMemoryStore();
      return Promise.resolve({ store, cleanup: () => store.close() });
    },
  },
  {
    name: "directory store",
    create: async () => {
      const directory = await mkdtemp(join(tmpdir(), "certgate-service-"));
      const store = await createDirectoryStore({ directory, onProblem: () => undefined });
      return {
        store,
        cleanup: async () => {
          await store.close();
          await rm(directory, { recursive: true, force: true });
        },
      };
    },
  },
];

describe.each(storeKinds)("createCertificateStoreService() over the $name", (kind) => {
  let store: WritableCertificateStore;
  let cleanup: () => Promise<void>;
  let service: RunningService;
  let admin: Record<StoreProtocol, StoreClient>;
  let reader: StoreClient;

  beforeAll(async () => {
    ({ store, cleanup } = await kind.create());
    service = await startService(pki, store);
    admin = { connect: storeClient(service, pki, pki.admin), grpc: storeClient(service, pki, pki.admin, "grpc") };
    reader = storeClient(service, pki, pki.reader);
  });
  afterAll(async () => {
    await service.close();
    await cleanup();
  });

  async function ids(): Promise<string[]> {
    return (await store.list({ limit: 1000 })).map((c) => c.id);
  }

  describe("CreateCertificate", () => {
    it("admits an admin's PEM upload, stored under its SHA-256 thumbprint", async () => {
      const { certificate } = await admin.connect.createCertificate({ certificate: Buffer.from(pki.alice.cert) });
      expect(certificate?.certificateId).toBe(sha256Of(pki.alice));
      expect(certificate?.sha256Thumbprint).toBe(sha256Of(pki.alice));
      expect(certificate?.sha1Thumbprint).toBe(sha1Of(pki.alice));
      expect(certificate?.subject).toContain("CN=alice");
      expect(certificate?.issuer).toContain("certgate service test CA");
      expect(certificate?.der).toEqual(pki.alice.der);
      expect(certificate?.notAfter).toBeDefined();
      expect(certificate?.createTime).toBeDefined();
      expect(await ids()).toContain(sha256Of(pki.alice));
    });

    it("refuses the same id twice with AlreadyExists", async () => {
      expect(await codeOf(admin.connect.createCertificate({ certificate: pki.alice.der }))).toBe(Code.AlreadyExists);
    });

    it("admits an admin's DER upload over gRPC, with an id and labels", async () => {
      const { certificate } = await admin.grpc.createCertificate({
        certificate: pki.bob.der,
        certificateId: "bob-2025",
        labels: { team: "payments" },
      });
      expect(certificate?.certificateId).toBe("bob-2025");
      expect(certificate?.labels).toEqual({ team: "payments" });
      const got = await reader.getCertificate({ certificateId: "bob-2025" });
      expect(got.certificate?.sha256Thumbprint).toBe(sha256Of(pki.bob));
      expect(got.certificate?.labels).toEqual({ team: "payments" });
    });

    const key = /private key/;
    const hostile: [string, () => Uint8Array, Code, RegExp][] = [
      [
        "garbage bytes",
        () => new Uint8Array([0x30, 0x82, 0x01, 0x00, 1, 2, 3, 4, 5]),
        Code.InvalidArgument,
        /not a certificate/,
      ],
      ["random text", () => Buffer.from("hello, certificate"), Code.InvalidArgument, /not a certificate/],
      ["empty bytes", () => new Uint8Array(0), Code.InvalidArgument, /no certificate/],
      ["a private key alone (PEM)", () => Buffer.from(pki.alice.key), Code.InvalidArgument, key],
      [
        "a certificate and its key (PEM bundle)",
        () => Buffer.from(pki.alice.cert + pki.alice.key),
        Code.InvalidArgument,
        key,
      ],
      [
        "a key, then its certificate (PEM bundle)",
        () => Buffer.from(pki.bob.key + pki.bob.cert),
        Code.InvalidArgument,
        key,
      ],
      ["a private key alone (DER)", () => derOfKey(pki.alice.key), Code.InvalidArgument, key],
      [
        "a DER certificate followed by its DER key",
        () => Buffer.concat([pki.alice.der, derOfKey(pki.alice.key)]),
        Code.InvalidArgument,
        key,
      ],
      [
        "two certificates",
        () => Buffer.from(pki.alice.cert + pki.bob.cert),
        Code.InvalidArgument,
        /more than one certificate/,
      ],
      ["a truncated certificate", () => pki.alice.der.subarray(0, 100), Code.InvalidArgument, /not a certificate/],
      [
        "an upload over 64 KiB",
        () => Buffer.from(pki.alice.cert + "#".repeat(70 * 1024)),
        Code.ResourceExhausted,
        /too large/,
      ],
      ["a request over the read limit (1 MiB)", () => new Uint8Array(1024 * 1024), Code.ResourceExhausted, /./],
    ];
    it.each(hostile)("refuses %s and keeps nothing", async (_, bytes, code, message) => {
      const before = await ids();
      for (const protocol of ["connect", "grpc"] as const) {
        const error = await admin[protocol].createCertificate({ certificate: bytes(), certificateId: "hostile" }).then(
          () => undefined,
          (e: unknown) => ConnectError.from(e),
        );
        expect(error?.code).toBe(code);
        expect(error?.rawMessage).toMatch(message);
      }
      expect(await ids()).toEqual(before);
    });

    it("refuses a label that holds a private key and keeps nothing", async () => {
      const before = await ids();
      const error = await admin.connect
        .createCertificate({ certificate: others[0]?.der, labels: { note: pki.alice.key } })
        .then(
          () => undefined,
          (e: unknown) => ConnectError.from(e),
        );
      expect(error?.code).toBe(Code.InvalidArgument);
      expect(error?.rawMessage).toMatch(/private key/);
      expect(await ids()).toEqual(before);
    });

    // A `__proto__` key arrives as an own key of the decoded map (binary and
    // JSON alike); U+2028 and bidi controls would forge lines or hide text.
    const hostileLabels: [string, () => Record<string, string>][] = [
      ["a __proto__ key", () => JSON.parse('{"__proto__":"x","team":"a"}') as Record<string, string>],
      ["a line separator (U+2028)", () => ({ note: "a\u2028b" })],
      ["a bidi override (U+202E)", () => ({ note: "admin\u202egnp.exe" })],
      ["a bidi isolate (U+2066)", () => ({ note: "\u2066x" })],
      ["a C1 control (U+0085)", () => ({ note: "a\u0085b" })],
    ];
    it.each(hostileLabels)("refuses labels with %s over Connect and gRPC, and keeps nothing", async (_, labels) => {
      const before = await ids();
      for (const protocol of ["connect", "grpc"] as const) {
        const error = await admin[protocol]
          .createCertificate({ certificate: others[0]?.der, certificateId: "labelled", labels: labels() })
          .then(
            () => undefined,
            (e: unknown) => ConnectError.from(e),
          );
        expect(error?.code).toBe(Code.InvalidArgument);
      }
      expect(await ids()).toEqual(before);
    });

    it("admits ordinary labels, accents and emoji included", async () => {
      const { certificate } = await admin.connect.createCertificate({
        certificate: others[1]?.der,
        certificateId: "labelled-ok",
        labels: { "team/name": "zürich 🚀", "a.b_c-d": "x" },
      });
      expect(certificate?.labels).toEqual({ "team/name": "zürich 🚀", "a.b_c-d": "x" });
      await admin.connect.deleteCertificate({ certificateId: "labelled-ok" });
    });

    it.each(["../x", "a/b", ".x", ".hidden", "x y", "x".repeat(129)])("refuses the id %j", async (id) => {
      const before = await ids();
      expect(await codeOf(admin.connect.createCertificate({ certificate: others[0]?.der, certificateId: id }))).toBe(
        Code.InvalidArgument,
      );
      expect(await ids()).toEqual(before);
    });
  });

  describe("GetCertificate and DeleteCertificate", () => {
    it.each(["", "../x", "a/b", ".x"])("refuses the id %j with InvalidArgument", async (id) => {
      expect(await codeOf(reader.getCertificate({ certificateId: id }))).toBe(Code.InvalidArgument);
      expect(await codeOf(admin.connect.deleteCertificate({ certificateId: id }))).toBe(Code.InvalidArgument);
    });

    it("refuses an unknown id with NotFound", async () => {
      expect(await codeOf(reader.getCertificate({ certificateId: "nobody" }))).toBe(Code.NotFound);
      expect(await codeOf(admin.connect.deleteCertificate({ certificateId: "nobody" }))).toBe(Code.NotFound);
    });

    it("admits a deletion, after which the id is NotFound", async () => {
      await admin.connect.createCertificate({ certificate: others[1]?.der, certificateId: "short-lived" });
      await admin.grpc.deleteCertificate({ certificateId: "short-lived" });
      expect(await codeOf(reader.getCertificate({ certificateId: "short-lived" }))).toBe(Code.NotFound);
      expect(await ids()).not.toContain("short-lived");
    });
  });

  describe("ListCertificates", () => {
    it("pages through every certificate in id order", async () => {
      for (const [i, c] of others.entries()) {
        await admin.connect.createCertificate({ certificate: c.der, certificateId: `page-${i}` });
      }
      const all = await ids();
      const seen: string[] = [];
      let token = "";
      let pages = 0;
      do {
        const page = await reader.listCertificates({ pageSize: 2, pageToken: token });
        expect(page.certificates.length).toBeLessThanOrEqual(2);
        seen.push(...page.certificates.map((c) => c.certificateId));
        token = page.nextPageToken;
        pages++;
      } while (token !== "");
      expect(seen).toEqual(all);
      expect(pages).toBe(Math.ceil(all.length / 2));
      const whole = await reader.listCertificates({});
      expect(whole.certificates.map((c) => c.certificateId)).toEqual(all);
      expect(whole.nextPageToken).toBe("");
      const clamped = await reader.listCertificates({ pageSize: 5000 });
      expect(clamped.certificates.length).toBe(all.length);
    });

    it("refuses a negative page size or a forged page token", async () => {
      expect(await codeOf(reader.listCertificates({ pageSize: -1 }))).toBe(Code.InvalidArgument);
      expect(await codeOf(reader.listCertificates({ pageToken: "not a token" }))).toBe(Code.InvalidArgument);
      expect(await codeOf(reader.listCertificates({ pageToken: Buffer.from("c1:../x").toString("base64url") }))).toBe(
        Code.InvalidArgument,
      );
    });
  });

  describe("VerifyCertificate", () => {
    it("admits a stored certificate, given as PEM or by thumbprint in any spelling", async () => {
      const byPem = await reader.verifyCertificate({
        subject: { case: "certificate", value: Buffer.from(pki.alice.cert) },
      });
      expect(byPem.admitted).toBe(true);
      expect(byPem.reason).toBe("");
      expect(byPem.certificate?.certificateId).toBe(sha256Of(pki.alice));
      const colons = sha1Of(pki.alice).toLowerCase().match(/../g)?.join(":") ?? "";
      const byThumbprint = await reader.verifyCertificate({
        subject: { case: "thumbprint", value: `\u200e${colons}` },
      });
      expect(byThumbprint.admitted).toBe(true);
      expect(byThumbprint.certificate?.sha1Thumbprint).toBe(sha1Of(pki.alice));
    });

    it("admits a certificate by thumbprint right after its upload was acknowledged", async () => {
      const byThumbprint = () => reader.verifyCertificate({ subject: { case: "thumbprint", value: sha256Of(fresh) } });
      expect((await byThumbprint()).admitted).toBe(false);
      await admin.connect.createCertificate({ certificate: fresh.der, certificateId: "fresh" });
      expect((await byThumbprint()).admitted).toBe(true);
      await admin.connect.deleteCertificate({ certificateId: "fresh" });
      expect((await byThumbprint()).reason).toBe("not_allowed");
    });

    it("refuses what is not stored, expired, not yet valid or unreadable, with the reason", async () => {
      const verify = (value: Uint8Array) => reader.verifyCertificate({ subject: { case: "certificate", value } });
      expect((await verify(pki.stranger.der)).reason).toBe("not_allowed");
      expect(
        (await reader.verifyCertificate({ subject: { case: "thumbprint", value: sha256Of(pki.stranger) } })).reason,
      ).toBe("not_allowed");
      await store.put("expired", expired.der);
      await store.put("future", notYetValid.der);
      expect((await verify(expired.der)).reason).toBe("expired");
      expect(
        (await reader.verifyCertificate({ subject: { case: "thumbprint", value: sha256Of(notYetValid) } })).reason,
      ).toBe("not_yet_valid");
      const garbage = await verify(Buffer.from("garbage"));
      expect(garbage).toMatchObject({ admitted: false, reason: "invalid_certificate" });
    });

    it("refuses a malformed thumbprint, a private key or an empty request with InvalidArgument", async () => {
      expect(await codeOf(reader.verifyCertificate({ subject: { case: "thumbprint", value: "ABC" } }))).toBe(
        Code.InvalidArgument,
      );
      expect(
        await codeOf(reader.verifyCertificate({ subject: { case: "certificate", value: Buffer.from(pki.alice.key) } })),
      ).toBe(Code.InvalidArgument);
      expect(await codeOf(reader.verifyCertificate({}))).toBe(Code.InvalidArgument);
    });
  });
});

function derOfKey(pem: string): Buffer {
  const body = pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, "");
  return Buffer.from(body, "base64");
}

describe("certificate store service over a folder with a bundle", () => {
  let carol: IssuedCertificate;
  beforeAll(async () => {
    carol = await issueDevCertificate(pki.ca, { commonName: "carol", usages: ["client"] });
  });

  const opened: (() => unknown)[] = [];
  afterEach(async () => {
    while (opened.length > 0) await opened.pop()?.();
  });

  function tempFolder(files: Record<string, string>): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "certgate-review-svc-"));
    opened.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
    return dir;
  }

  async function folderService(files: Record<string, string>) {
    const store = await createDirectoryStore({
      directory: tempFolder(files),
      watch: false,
      rescanIntervalMs: 0,
      onProblem: () => {},
    });
    opened.push(() => store.close());
    const running = await startService(pki, store);
    opened.push(() => running.close());
    return running;
  }

  describe("ListCertificates over a folder with a bundle", () => {
    it("admits the page token of a page that ends inside a bundle, and lists every certificate", async () => {
      // team.pem holds two certificates: entries "team" and "team#2".
      const running = await folderService({ "team.pem": pki.alice.cert + pki.bob.cert, "zed.pem": carol.cert });
      const client = storeClient(running, pki, pki.reader);
      const ids: string[] = [];
      let pageToken = "";
      do {
        const page = await client.listCertificates({ pageSize: 2, pageToken });
        ids.push(...page.certificates.map((c) => c.certificateId));
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
      expect(ids).toEqual(["team", "team#2", "zed"]);
    });
  });

  describe("GetCertificate over a folder with a bundle", () => {
    it("admits the id of the second certificate of a bundle, as ListCertificates names it", async () => {
      const running = await folderService({ "team.pem": pki.alice.cert + pki.bob.cert });
      const got = await storeClient(running, pki, pki.reader).getCertificate({ certificateId: "team#2" });
      expect(got.certificate?.sha256Thumbprint).toBe(sha256Of(pki.bob));
    });

    it("refuses ids that could name a path or another member form", async () => {
      const running = await folderService({ "team.pem": pki.alice.cert + pki.bob.cert });
      const client = storeClient(running, pki, pki.reader);
      for (const certificateId of ["../team", "team#0", "team#", "#2", "team#2#2", ""]) {
        const error = await client.getCertificate({ certificateId }).then(
          () => undefined,
          (e: unknown) => ConnectError.from(e),
        );
        expect(error?.code, certificateId).toBe(Code.InvalidArgument);
      }
    });
  });
});
