import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { CertificateStoreService } from "../../src/gen/certgate/v1/certificate_store_pb.js";
import { ClientCertificateErrorSchema } from "../../src/gen/certgate/v1/errors_pb.js";
import { createDevCa, issueDevCertificate } from "../../src/dev-certificates.js";
import type { WritableCertificateStore } from "../../src/core/store.js";
import { createMemoryStore } from "../../src/stores/memory-store.js";
import { createCertificateStoreServer } from "../../src/service/certificate-store-server.js";
import {
  createServicePki,
  serviceTransport,
  sha1Of,
  sha256Of,
  startService,
  storeClient,
  type RunningService,
  type ServicePki,
  codeOf,
} from "../support/service-harness.js";

type StoreClient = Client<typeof CertificateStoreService>;

async function firstEvent(client: StoreClient): Promise<void> {
  const abort = new AbortController();
  try {
    for await (const _ of client.watchCertificates({}, { signal: abort.signal })) {
      break;
    }
  } finally {
    abort.abort();
  }
}

let pki: ServicePki;
beforeAll(async () => {
  pki = await createServicePki();
});

describe("createCertificateStoreService() access", () => {
  const rpcs = [
    "CreateCertificate",
    "GetCertificate",
    "ListCertificates",
    "DeleteCertificate",
    "VerifyCertificate",
    "WatchCertificates",
    "ListAuditEvents",
  ] as const;
  type Rpc = (typeof rpcs)[number];
  type Who = "admin" | "reader" | "stranger" | "nobody";
  const expected: Record<Who, (rpc: Rpc) => Code | "ok"> = {
    admin: () => "ok",
    reader: (rpc) => (rpc === "CreateCertificate" || rpc === "DeleteCertificate" ? Code.PermissionDenied : "ok"),
    stranger: () => Code.Unauthenticated,
    nobody: () => Code.Unauthenticated,
  };
  const cells = (["connect", "grpc"] as const).flatMap((protocol) =>
    (["admin", "reader", "stranger", "nobody"] as const).flatMap((who) =>
      rpcs.map((rpc) => {
        const outcome = expected[who](rpc);
        return { protocol, who, rpc, outcome, shown: outcome === "ok" ? "ok" : Code[outcome] };
      }),
    ),
  );

  let store: WritableCertificateStore;
  let service: RunningService;
  let uploads = 0;
  // One client (one connection) per protocol and certificate.
  const clients = new Map<string, StoreClient>();
  beforeAll(async () => {
    store = createMemoryStore();
    await store.put("seed", pki.alice.der);
    service = await startService(pki, store);
  });
  afterAll(async () => {
    await service.close();
    await store.close();
  });

  function call(client: StoreClient, rpc: Rpc, who: Who): Promise<unknown> {
    switch (rpc) {
      case "CreateCertificate":
        return client.createCertificate({ certificate: pki.bob.der, certificateId: `upload-${who}-${uploads++}` });
      case "GetCertificate":
        return client.getCertificate({ certificateId: "seed" });
      case "ListCertificates":
        return client.listCertificates({});
      case "DeleteCertificate":
        return who === "admin"
          ? store
              .put(`doomed-${uploads}`, pki.bob.der)
              .then(() => client.deleteCertificate({ certificateId: `doomed-${uploads++}` }))
          : client.deleteCertificate({ certificateId: "seed" });
      case "VerifyCertificate":
        return client.verifyCertificate({ subject: { case: "thumbprint", value: sha256Of(pki.alice) } });
      case "WatchCertificates":
        return firstEvent(client);
      case "ListAuditEvents":
        return client.listAuditEvents({});
    }
  }

  it.each(cells)("$who calling $rpc over $protocol: $shown", async ({ protocol, who, rpc, outcome }) => {
    const key = `${protocol}/${who}`;
    let client = clients.get(key);
    if (client === undefined) {
      client = storeClient(service, pki, who === "nobody" ? undefined : pki[who], protocol);
      clients.set(key, client);
    }
    const result = await call(client, rpc, who).then(
      () => "ok" as const,
      (error: unknown) => ConnectError.from(error),
    );
    expect(result === "ok" ? "ok" : result.code).toBe(outcome);
    if (result !== "ok") {
      // Refusals never tell which certificates are on the lists.
      expect(result.rawMessage).not.toMatch(/[0-9A-F]{40}/);
      // The same enforcement path as every server: the ClientCertificateError detail.
      const [detail] = result.findDetails(ClientCertificateErrorSchema);
      expect(detail).toMatchObject({
        procedure: `/certgate.v1.CertificateStoreService/${rpc}`,
        reason: who === "reader" ? "permission_denied" : who === "nobody" ? "no_certificate" : "not_allowed",
      });
    }
    // A refused deletion deleted nothing.
    expect(await store.get("seed")).toBeDefined();
  });

  it("admits readers and admins listed by store, and refuses a listed certificate that does not chain to the client CA", async () => {
    const otherCa = await createDevCa({ commonName: "another CA" });
    const impostor = await issueDevCertificate(otherCa, { commonName: "impostor admin", usages: ["client"] });
    const readers = createMemoryStore({ certificates: [pki.reader.der] });
    const server = createCertificateStoreServer({
      store,
      cert: pki.server.cert,
      key: pki.server.key,
      clientCa: pki.ca.cert,
      access: {
        admin: { thumbprints: [sha256Of(pki.admin), sha256Of(impostor)] },
        reader: { stores: [readers] },
      },
      shutdownTimeoutMs: 200,
    });
    const { url } = await server.listen();
    try {
      const ok = await storeClient({ url }, pki, pki.admin).listCertificates({});
      expect(ok.certificates.length).toBeGreaterThan(0);
      expect(
        (await storeClient({ url }, pki, pki.reader).getCertificate({ certificateId: "seed" })).certificate,
      ).toBeDefined();
      expect(await codeOf(storeClient({ url }, pki, pki.reader).deleteCertificate({ certificateId: "seed" }))).toBe(
        Code.PermissionDenied,
      );
      const impostorClient = createClient(
        CertificateStoreService,
        serviceTransport({ url }, { ...pki, admin: impostor }, impostor),
      );
      const refused = await impostorClient.listCertificates({}).catch((e: unknown) => ConnectError.from(e));
      expect(refused).toBeInstanceOf(ConnectError);
      expect((refused as ConnectError).code).toBe(Code.Unauthenticated);
      // Removing the reader from its store takes effect on an open connection.
      const readerClient = storeClient({ url }, pki, pki.reader);
      await readerClient.listCertificates({});
      await readers.delete(sha256Of(pki.reader));
      expect(await codeOf(readerClient.listCertificates({}))).toBe(Code.Unauthenticated);
    } finally {
      await server.close();
      await readers.close();
    }
  });

  it("refuses to start without admins or readers, with a malformed thumbprint or a bad client CA", () => {
    const base = { store, cert: pki.server.cert, key: pki.server.key };
    expect(() => createCertificateStoreServer({ ...base, access: {} })).toThrow(/no admin or reader/);
    expect(() => createCertificateStoreServer({ ...base, access: { admin: { thumbprints: ["12:34"] } } })).toThrow(
      /admin invalid thumbprint/,
    );
    expect(() =>
      createCertificateStoreServer({
        ...base,
        clientCa: "not a pem",
        access: { admin: { thumbprints: [sha1Of(pki.admin)] } },
      }),
    ).toThrow(/clientCa/);
    expect(() =>
      createCertificateStoreServer({
        ...base,
        clientCa: pki.ca.key,
        access: { admin: { thumbprints: [sha1Of(pki.admin)] } },
      }),
    ).toThrow(/private key/);
    expect(() =>
      createCertificateStoreServer({ ...base, cert: "", access: { admin: { thumbprints: [sha1Of(pki.admin)] } } }),
    ).toThrow(/cert and key/);
  });
});
