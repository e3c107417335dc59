import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import { Code, createClient } from "@connectrpc/connect";
import {
  CertificateStoreService,
  CreateCertificateRequestSchema,
  CreateCertificateResponseSchema,
  ListCertificatesRequestSchema,
  ListCertificatesResponseSchema,
  WatchCertificatesRequestSchema,
  WatchCertificatesResponseSchema,
} from "../../src/gen/certgate/v1/certificate_store_pb.js";
import {
  Health,
  HealthCheckRequestSchema,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "../../src/gen/grpc/health/v1/health_pb.js";
import type { WritableCertificateStore } from "../../src/core/store.js";
import { createMemoryStore } from "../../src/stores/memory-store.js";
import {
  createGrpcJsClient,
  createServicePki,
  serviceTransport,
  sha256Of,
  startService,
  type RunningService,
  type ServicePki,
  codeOf,
} from "../support/service-harness.js";

let pki: ServicePki;
beforeAll(async () => {
  pki = await createServicePki();
});

describe("createCertificateStoreServer() health and grpc-js", () => {
  let store: WritableCertificateStore;
  let service: RunningService;
  beforeAll(async () => {
    store = createMemoryStore();
    service = await startService(pki, store);
  });
  afterAll(async () => {
    await service.close();
    await store.close();
  });

  it("admits a health check without a client certificate (Connect and grpc-js)", async () => {
    const health = createClient(Health, serviceTransport(service, pki, undefined));
    expect((await health.check({})).status).toBe(ServingStatus.SERVING);
    expect((await health.check({ service: "certgate.v1.CertificateStoreService" })).status).toBe(ServingStatus.SERVING);
    const grpcJs = createGrpcJsClient(service.port, { ca: pki.ca.cert });
    try {
      const response = await grpcJs.unary(
        Health,
        "Check",
        HealthCheckRequestSchema,
        HealthCheckResponseSchema,
        create(HealthCheckRequestSchema),
      );
      expect(response.status).toBe(ServingStatus.SERVING);
      const watched = await grpcJs.serverStream(
        Health,
        "Watch",
        HealthCheckRequestSchema,
        HealthCheckResponseSchema,
        create(HealthCheckRequestSchema),
        1,
      );
      expect(watched[0]?.status).toBe(ServingStatus.SERVING);
    } finally {
      grpcJs.close();
    }
  });

  it("refuses a health check of an unknown service with NotFound", async () => {
    const health = createClient(Health, serviceTransport(service, pki, undefined, "grpc"));
    expect(await codeOf(health.check({ service: "no.such.Service" }))).toBe(Code.NotFound);
  });

  it("admits an admin calling with grpc-js: upload, list, watch", async () => {
    const client = createGrpcJsClient(service.port, { ca: pki.ca.cert, cert: pki.admin.cert, key: pki.admin.key });
    try {
      const created = await client.unary(
        CertificateStoreService,
        "CreateCertificate",
        CreateCertificateRequestSchema,
        CreateCertificateResponseSchema,
        create(CreateCertificateRequestSchema, { certificate: pki.alice.der }),
      );
      expect(created.certificate?.sha256Thumbprint).toBe(sha256Of(pki.alice));
      const listed = await client.unary(
        CertificateStoreService,
        "ListCertificates",
        ListCertificatesRequestSchema,
        ListCertificatesResponseSchema,
        create(ListCertificatesRequestSchema),
      );
      expect(listed.certificates.map((c) => c.certificateId)).toEqual([sha256Of(pki.alice)]);
      const events = await client.serverStream(
        CertificateStoreService,
        "WatchCertificates",
        WatchCertificatesRequestSchema,
        WatchCertificatesResponseSchema,
        create(WatchCertificatesRequestSchema),
        2,
      );
      expect(events[0]?.event.case).toBe("snapshot");
      expect(events[1]?.event.case).toBe("heartbeat");
    } finally {
      client.close();
    }
  });

  it.each([
    ["no certificate", undefined],
    ["a stranger's certificate", "stranger"],
  ] as const)("refuses grpc-js with %s: UNAUTHENTICATED", async (_, who) => {
    const tls = who === undefined ? { ca: pki.ca.cert } : { ca: pki.ca.cert, cert: pki[who].cert, key: pki[who].key };
    const client = createGrpcJsClient(service.port, tls);
    try {
      const error = await client
        .unary(
          CertificateStoreService,
          "ListCertificates",
          ListCertificatesRequestSchema,
          ListCertificatesResponseSchema,
          create(ListCertificatesRequestSchema),
        )
        .then(
          () => undefined,
          (e: grpc.ServiceError) => e,
        );
      expect(error?.code).toBe(grpc.status.UNAUTHENTICATED);
    } finally {
      client.close();
    }
  });
});
