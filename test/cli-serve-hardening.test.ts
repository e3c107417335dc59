import { mkdir, rename, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { CertificateStoreService } from "../src/gen/certgate/v1/certificate_store_pb.js";
import { parseCertificate } from "../src/certificate.js";
import type { IssuedCertificate } from "../src/dev-certificates.js";
import { createCliFixture, killAll, startServe } from "./cli-harness.js";
import { waitFor, type TestPki } from "./harness.js";

let tmp: string;
let pki: TestPki;
let admin: IssuedCertificate;
let reader: IssuedCertificate;
let files: Record<string, string>;

beforeAll(async () => {
  ({ tmp, pki, admin, reader, files } = await createCliFixture());
});

afterAll(async () => {
  killAll();
  await rm(tmp, { recursive: true, force: true });
});

function tlsArgs(): string[] {
  return ["--tls-cert", files["server.pem"]!, "--tls-key", files["server-key.pem"]!];
}

function clientFor(url: string, who: IssuedCertificate) {
  return createClient(
    CertificateStoreService,
    createConnectTransport({
      baseUrl: url,
      httpVersion: "2",
      nodeOptions: { ca: pki.ca.cert, cert: who.cert, key: who.key },
    }),
  );
}

describe("certgate serve when its folders cannot be checked", () => {
  it("keeps serving the last good set and logs the folder (parent replaced by a file, symlink loop)", async () => {
    const base = join(tmp, "unreadable");
    const dataParent = join(base, "parent");
    const dataDir = join(dataParent, "data");
    const readers = join(base, "readers");
    await mkdir(dataDir, { recursive: true });
    await mkdir(readers, { recursive: true });
    await writeFile(join(readers, "reader.pem"), reader.cert);
    const serve = await startServe([
      "--data-dir",
      dataDir,
      ...tlsArgs(),
      "--admin",
      parseCertificate(admin.cert).sha256,
      "--reader-dir",
      readers,
    ]);
    try {
      const asAdmin = clientFor(serve.url, admin);
      await asAdmin.createCertificate({ certificate: pki.alice.der, certificateId: "alice" });
      // Stage one: the data folder's parent becomes a file (ENOTDIR), the
      // reader folder a symlink to itself (ELOOP): statSync throws for both.
      await rename(dataParent, join(base, "parent-moved"));
      await writeFile(dataParent, "not a folder");
      await rename(readers, join(base, "readers-moved"));
      await symlink(readers, readers);
      const logged = (folder: string, code: string) =>
        serve.output().stderr.split("\n").some((line) => line.includes(`skipped ${folder}: `) && line.includes(`(${code})`));
      await waitFor(() => logged(dataDir, "ENOTDIR") && logged(readers, "ELOOP"), "the first folder problems", 20_000);
      // Stage two, the causes swapped: the folders are no longer watched, so
      // only the periodic rescan can report these, and it runs into the
      // throwing statSync first.
      await rm(dataParent);
      await symlink(dataParent, dataParent);
      await rm(readers);
      await symlink(join(base, "parent-moved", "data", "alice.pem", "x"), readers);
      const exited = () => serve.child.exitCode !== null || serve.child.signalCode !== null;
      await waitFor(
        () => exited() || (logged(dataDir, "ELOOP") && logged(readers, "ENOTDIR")),
        "the rescans to report the new causes",
        20_000,
      );
      expect(exited(), serve.output().stderr).toBe(false);
      expect(serve.output().stderr).toMatch(/the last good set of certificates is still served/);
      expect(serve.child.exitCode).toBeNull();
      // The reader from the last good set is still admitted, and verify works
      // from memory; the process outlives more rescans.
      const asReader = clientFor(serve.url, reader);
      const verified = await asReader.verifyCertificate({ subject: { case: "certificate", value: pki.alice.der } });
      expect(verified.admitted).toBe(true);
      const refused = await asReader.verifyCertificate({ subject: { case: "certificate", value: pki.bob.der } });
      expect(refused.admitted).toBe(false);
      expect(serve.child.exitCode).toBeNull();
      expect(serve.output().stderr).not.toMatch(/Unhandled|unhandled|Error:/);
    } finally {
      expect(await serve.stop()).toBe(0);
    }
  }, 60_000);
});
