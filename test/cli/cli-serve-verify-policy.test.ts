// certgate serve --verify-policy FILE: VerifyCertificate applies a policy
// file on top of the store.
import { X509Certificate } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CertificateStoreService } from "../../src/gen/certgate/v1/certificate_store_pb.js";
import { createDevCa } from "../../src/dev-certificates.js";
import {
  createCliFixture,
  expectFailure,
  killAll,
  runHere,
  serveTlsArgs,
  startServe,
  type CliFixture,
} from "../support/cli-harness.js";

let fixture: CliFixture;
let dir: string;

beforeAll(async () => {
  fixture = await createCliFixture();
  dir = await mkdtemp(join(fixture.tmp, "verify-policy-"));
});

afterAll(async () => {
  killAll();
  await rm(fixture.tmp, { recursive: true, force: true });
});

function serveArgs(dataDir: string): string[] {
  return [
    ...["--data-dir", dataDir, ...serveTlsArgs(fixture)],
    "--admin",
    new X509Certificate(fixture.admin.cert).fingerprint256,
    "--reader",
    new X509Certificate(fixture.reader.cert).fingerprint256,
  ];
}

async function verifyAliceWith(policy: object | undefined): Promise<{ admitted: boolean; reason: string }> {
  const dataDir = await mkdtemp(join(dir, "data-"));
  const args = serveArgs(dataDir);
  if (policy !== undefined) {
    const file = `${dataDir}-policy.json`;
    await writeFile(file, JSON.stringify(policy));
    args.push("--verify-policy", file);
  }
  const serve = await startServe(args);
  try {
    const client = (who: typeof fixture.admin) =>
      createClient(
        CertificateStoreService,
        createConnectTransport({
          baseUrl: serve.url,
          httpVersion: "2",
          nodeOptions: { ca: fixture.pki.ca.cert, cert: who.cert, key: who.key },
        }),
      );
    await client(fixture.admin).createCertificate({ certificate: fixture.pki.alice.der, certificateId: "alice" });
    const answer = await client(fixture.reader).verifyCertificate({
      subject: { case: "certificate", value: fixture.pki.alice.der },
    });
    return { admitted: answer.admitted, reason: answer.reason };
  } finally {
    await serve.stop();
  }
}

describe("certgate serve --verify-policy", () => {
  it("refuses in VerifyCertificate what the policy refuses: alice's CA is not the policy's", async () => {
    const other = await createDevCa({ commonName: "another CA" });
    expect(await verifyAliceWith({ validateTrust: { ca: [other.cert] } })).toEqual({
      admitted: false,
      reason: "untrusted",
    });
  });

  it("admits what the policy admits, and without a policy the store alone decides", async () => {
    expect(await verifyAliceWith({ validateTrust: { ca: [fixture.pki.ca.cert] } })).toEqual({
      admitted: true,
      reason: "",
    });
    expect(await verifyAliceWith(undefined)).toEqual({ admitted: true, reason: "" });
  });

  it("fails at start-up naming the flag for a file that is missing, not JSON or has an unknown option", async () => {
    const notJson = join(dir, "not.json");
    await writeFile(notJson, "{");
    const unknown = join(dir, "unknown.json");
    await writeFile(unknown, JSON.stringify({ validateTrusts: true }));
    for (const [file, message] of [
      [join(dir, "missing.json"), /--verify-policy .*missing\.json/],
      [notJson, /--verify-policy .*not\.json: not JSON/],
      [unknown, /--verify-policy .*unknown\.json: unknown option "validateTrusts"/],
    ] as const) {
      expectFailure(await runHere(["serve", ...serveArgs(join(dir, "unused")), "--verify-policy", file]), 1, message);
    }
  });
});
