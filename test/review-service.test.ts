import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { parseCertificate, type Certificate } from "../src/core/certificate.js";
import { issueDevCertificate, type IssuedCertificate } from "../src/dev-certificates.js";
import { createDirectoryStore } from "../src/stores/directory-store.js";
import { createMemoryStore } from "../src/stores/memory-store.js";
import { createRemoteStore } from "../src/stores/remote-store.js";
import {
  createServicePki,
  serviceTransport,
  sha256Of,
  startService,
  storeClient,
  type ServicePki,
} from "./support/service-harness.js";

// Review findings in the certificate store service and the stores behind it,
// through a real service on 127.0.0.1 over mTLS.

let pki: ServicePki;
let carol: IssuedCertificate;
beforeAll(async () => {
  pki = await createServicePki();
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
  const store = await createDirectoryStore({ directory: tempFolder(files), watch: false, rescanIntervalMs: 0, onProblem: () => {} });
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

  it("refuses a page token that was not made by the service", async () => {
    const running = await folderService({ "team.pem": pki.alice.cert + pki.bob.cert });
    const client = storeClient(running, pki, pki.reader);
    const forged = Buffer.from("c1:../x", "utf8").toString("base64url");
    const error = await client.listCertificates({ pageSize: 2, pageToken: forged }).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(error?.code).toBe(Code.InvalidArgument);
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

// A certificate whose SHA-1 equals a stored certificate's but whose SHA-256
// does not is a different certificate: only a SHA-1 collision makes one
// (chosen-prefix collisions on certificates are practical). Stores of whole
// certificates must not admit it; they know both digests of what they keep.
function sha1Twin(of: IssuedCertificate, other: IssuedCertificate): Certificate {
  const original = parseCertificate(of.der);
  return { ...parseCertificate(other.der), sha1: original.sha1 };
}

describe("createMemoryStore() lookup", () => {
  it("admits a stored certificate", async () => {
    const store = createMemoryStore();
    await store.put("alice", pki.alice.der);
    const verdict = await store.lookup(parseCertificate(pki.alice.der), new AbortController().signal);
    expect(verdict.kind).toBe("admitted");
  });

  it("refuses a certificate that shares only the SHA-1 thumbprint of a stored one", async () => {
    const store = createMemoryStore();
    await store.put("alice", pki.alice.der);
    const verdict = await store.lookup(sha1Twin(pki.alice, carol), new AbortController().signal);
    expect(verdict).toMatchObject({ kind: "refused", reason: "not_allowed" });
  });
});

describe("createRemoteStore() mirror lookup", () => {
  async function mirrorOf() {
    const store = createMemoryStore();
    await store.put("alice", pki.alice.der);
    const running = await startService(pki, store, { watchHeartbeatMs: 200 });
    opened.push(() => running.close());
    const remote = createRemoteStore({ transport: serviceTransport(running, pki, pki.reader, "grpc") });
    opened.push(() => remote.close());
    await remote.ready(10_000);
    return remote;
  }

  it("admits a certificate the service stores", async () => {
    const remote = await mirrorOf();
    const verdict = await remote.lookup(parseCertificate(pki.alice.der), new AbortController().signal);
    expect(verdict.kind).toBe("admitted");
  });

  it("refuses a certificate that shares only the SHA-1 thumbprint of a stored one", async () => {
    const remote = await mirrorOf();
    const verdict = await remote.lookup(sha1Twin(pki.alice, carol), new AbortController().signal);
    expect(verdict).toMatchObject({ kind: "refused", reason: "not_allowed" });
  });
});
