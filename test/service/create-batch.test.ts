// CreateCertificates takes only what CreateCertificate takes: bytes that one
// upload refuses (encodings DER forbids, structures OpenSSL does not parse)
// are named in the batch's error and nothing of the batch is stored, on the
// memory store (which parses each certificate itself) and on PostgreSQL
// (whose batch write trusts the service's check).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { CertificateBatchErrorSchema } from "../../src/gen/certgate/v1/certificate_store_pb.js";
import type { WritableCertificateStore } from "../../src/core/store.js";
import { createMemoryStore } from "../../src/stores/memory-store.js";
import { createPostgresStore } from "../../src/stores/postgres/postgres-store.js";
import { parseUpload } from "../../src/service/upload.js";
import {
  createServicePki,
  startService,
  storeClient,
  type RunningService,
  type ServicePki,
} from "../support/service-harness.js";
import { nonDerVariants } from "../support/non-der-certificates.js";
import { createTestDatabase, postgresSkipReason, type TestDatabase } from "../support/postgres.js";

const skipPostgres = await postgresSkipReason();
let pki: ServicePki;
let db: TestDatabase | undefined;
const services: RunningService[] = [];
const stores: WritableCertificateStore[] = [];

beforeAll(async () => {
  pki = await createServicePki();
  if (skipPostgres === undefined) db = await createTestDatabase();
});
afterAll(async () => {
  await Promise.all(services.map((s) => s.close()));
  await Promise.all(stores.map((s) => s.close()));
  await db?.drop();
});

const storeKinds = [
  { name: "memory store", skip: undefined, create: async () => createMemoryStore() },
  {
    name: "PostgreSQL store",
    skip: skipPostgres,
    create: () => createPostgresStore({ connectionString: (db as TestDatabase).url, schema: "batch_der" }),
  },
];

describe.each(storeKinds)("CreateCertificates on the $name", ({ skip, create }) => {
  let service: RunningService;
  beforeAll(async () => {
    if (skip !== undefined) return;
    const store = await create();
    stores.push(store);
    service = await startService(pki, store);
    services.push(service);
  });

  it.skipIf(skip !== undefined)("accepts a canonical DER certificate", async () => {
    const admin = storeClient(service, pki, pki.admin);
    const stored = await admin.createCertificates({
      requests: [{ certificateId: "canonical", certificate: pki.bob.der, labels: {} }],
    });
    expect(stored.certificates.map((c) => c.certificateId)).toEqual(["canonical"]);
    await admin.deleteCertificate({ certificateId: "canonical" });
  });

  it.skipIf(skip !== undefined)(
    "refuses each variant that CreateCertificate refuses, naming the item and storing nothing",
    async () => {
      const admin = storeClient(service, pki, pki.admin);
      for (const [name, der] of Object.entries(nonDerVariants(pki.bob.der))) {
        expect(parseUpload(der, 65536).kind, name).toBe("invalid");
        const error = await admin
          .createCertificates({
            requests: [
              { certificateId: "good", certificate: pki.alice.der, labels: {} },
              { certificateId: "variant", certificate: der, labels: {} },
            ],
          })
          .then(
            () => undefined,
            (e: unknown) => ConnectError.from(e),
          );
        expect(error?.code, name).toBe(Code.InvalidArgument);
        const items = error?.findDetails(CertificateBatchErrorSchema)[0]?.items ?? [];
        expect(
          items.map((i) => [i.index, i.certificateId]),
          name,
        ).toEqual([[1, "variant"]]);
        expect((await admin.listCertificates({})).certificates, name).toEqual([]);
      }
    },
  );
});
