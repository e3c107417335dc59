// VerifyCertificate with a validation policy: the interceptors' decision,
// online revocation included, against a real `openssl ocsp` responder.
import { X509Certificate } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMemoryStore } from "../../src/stores/memory-store.js";
import { freePort } from "../support/free-port.js";
import { createOcspPki, type OcspIssued, type OcspPki, type OcspResponder } from "../support/ocsp-pki.js";
import {
  createServicePki,
  startService,
  storeClient,
  type RunningService,
  type ServicePki,
} from "../support/service-harness.js";

let pki: ServicePki;
let ocsp: OcspPki;
let responder: OcspResponder;
let good: OcspIssued;
let revoked: OcspIssued;
let orphan: OcspIssued;
const closers: (() => Promise<void>)[] = [];

const derOf = (issued: OcspIssued) => new Uint8Array(new X509Certificate(issued.cert).raw);

beforeAll(async () => {
  pki = await createServicePki();
  ocsp = await createOcspPki();
  const port = await freePort();
  const ocspUrl = `http://127.0.0.1:${port}/`;
  good = await ocsp.issue("good", { ocspUrl });
  revoked = await ocsp.issue("revoked", { ocspUrl });
  ocsp.revoke(revoked);
  // Its responder never runs.
  orphan = await ocsp.issue("orphan", { ocspUrl: `http://127.0.0.1:${await freePort()}/` });
  responder = await ocsp.responder("ca", { port });
}, 30_000);

afterAll(async () => {
  for (const close of closers.reverse()) await close();
  await responder?.stop();
  await ocsp?.remove();
});

async function serviceWith(verifyPolicy: boolean): Promise<RunningService> {
  const store = createMemoryStore();
  for (const [id, issued] of [
    ["good", good],
    ["revoked", revoked],
    ["orphan", orphan],
  ] as const) {
    await store.put(id, derOf(issued));
  }
  const service = await startService(
    pki,
    store,
    verifyPolicy
      ? {
          verifyPolicy: {
            validateTrust: { ca: [ocsp.cert] },
            validateRevocation: { ocsp: "hard-fail", fetchTimeoutMs: 2000 },
            clockSkewMs: 60_000,
          },
        }
      : {},
  );
  closers.push(async () => {
    await service.close();
    await store.close();
  });
  return service;
}

describe("createCertificateStoreService({ verifyPolicy })", () => {
  it("admits a stored certificate its issuer's OCSP responder says is good", async () => {
    const reader = storeClient(await serviceWith(true), pki, pki.reader);
    const answer = await reader.verifyCertificate({ subject: { case: "certificate", value: derOf(good) } });
    expect(answer.admitted).toBe(true);
    expect(answer.certificate?.certificateId).toBe("good");
  });

  it("refuses a stored certificate the responder says is revoked, and one whose responder does not answer", async () => {
    const reader = storeClient(await serviceWith(true), pki, pki.reader);
    const refusedRevoked = await reader.verifyCertificate({ subject: { case: "certificate", value: derOf(revoked) } });
    expect([refusedRevoked.admitted, refusedRevoked.reason]).toEqual([false, "revoked"]);
    const byThumbprint = await reader.verifyCertificate({
      subject: { case: "thumbprint", value: new X509Certificate(revoked.cert).fingerprint256 },
    });
    expect([byThumbprint.admitted, byThumbprint.reason]).toEqual([false, "revoked"]);
    const refusedOrphan = await reader.verifyCertificate({ subject: { case: "certificate", value: derOf(orphan) } });
    expect([refusedOrphan.admitted, refusedOrphan.reason]).toEqual([false, "ocsp_unavailable"]);
  });

  it("without verifyPolicy, checks the store and the validity window alone (the revoked certificate is admitted)", async () => {
    const reader = storeClient(await serviceWith(false), pki, pki.reader);
    const answer = await reader.verifyCertificate({ subject: { case: "certificate", value: derOf(revoked) } });
    expect(answer.admitted).toBe(true);
  });
});
