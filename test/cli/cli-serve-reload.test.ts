import { createHash } from "node:crypto";
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { CertificateStoreService } from "../../src/gen/certgate/v1/certificate_store_pb.js";
import { createDevCa, issueDevCertificate, type IssuedCertificate } from "../../src/dev-certificates.js";
import { killAll, startServe, type Serve } from "../support/cli-harness.js";
import { createTestPki, waitFor, type TestPki } from "../support/harness.js";
import { atomicWrite, presentedCertificate, serialOf } from "../support/tls-rotation.js";

let tmp: string;
let pki: TestPki;
let otherCa: IssuedCertificate;
let serverB: IssuedCertificate;
let serverC: IssuedCertificate;
let admin1: IssuedCertificate;
let admin2: IssuedCertificate;
const sessions: Http2SessionManager[] = [];
const serves: Serve[] = [];

const sha256 = (issued: IssuedCertificate) => createHash("sha256").update(issued.der).digest("hex");
const serverCert = (name: string) =>
  issueDevCertificate(pki.ca, {
    commonName: name,
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1"],
    usages: ["server"],
  });

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "certgate-serve-reload-"));
  pki = await createTestPki();
  otherCa = await createDevCa({ commonName: "next clients CA" });
  serverB = await serverCert("server B");
  serverC = await serverCert("server C");
  admin1 = await issueDevCertificate(pki.ca, { commonName: "admin of the first CA", usages: ["client"] });
  admin2 = await issueDevCertificate(otherCa, { commonName: "admin of the next CA", usages: ["client"] });
});
afterEach(async () => {
  for (const s of sessions.splice(0)) s.abort();
  await Promise.all(serves.splice(0).map((s) => s.stop()));
});
afterAll(async () => {
  killAll();
  await rm(tmp, { recursive: true, force: true });
});

// A store client on a connection of its own.
function storeClient(url: string, who: IssuedCertificate) {
  const session = new Http2SessionManager(url, {}, { cert: who.cert, key: who.key, ca: pki.ca.cert });
  sessions.push(session);
  return createClient(
    CertificateStoreService,
    createConnectTransport({ baseUrl: url, httpVersion: "2", sessionManager: session }),
  );
}
async function list(client: ReturnType<typeof storeClient>): Promise<"admitted" | Code> {
  try {
    await client.listCertificates({});
    return "admitted";
  } catch (error) {
    return ConnectError.from(error).code;
  }
}
const port = (serve: Serve) => Number(new URL(serve.url).port);
function stderrLines(serve: Serve, pattern: RegExp): string[] {
  return serve
    .output()
    .stderr.split("\n")
    .filter((l) => pattern.test(l));
}

describe("certgate serve with TLS files", () => {
  it("reloads the server certificate and client CA of a mounted Secret for new connections; an open connection keeps working", async () => {
    const secret = join(tmp, "secret");
    await atomicWrite(secret, { "tls.crt": pki.server.cert, "tls.key": pki.server.key, "ca.crt": pki.ca.cert });
    const serve = await startServe([
      "--data-dir",
      join(tmp, "data1"),
      "--tls-cert",
      join(secret, "tls.crt"),
      "--tls-key",
      join(secret, "tls.key"),
      "--client-ca",
      join(secret, "ca.crt"),
      "--admin",
      sha256(admin1),
      "--admin",
      sha256(admin2),
    ]);
    serves.push(serve);
    const open = storeClient(serve.url, admin1);
    expect(await list(open)).toBe("admitted");
    expect(await list(storeClient(serve.url, admin2))).toBe(Code.Unauthenticated);
    expect((await presentedCertificate(port(serve))).serialNumber).toBe(serialOf(pki.server));

    await atomicWrite(secret, { "tls.crt": serverB.cert, "tls.key": serverB.key, "ca.crt": otherCa.cert });
    await waitFor(() => stderrLines(serve, /reloaded TLS certificate/).length === 1, "the reload line");
    expect(stderrLines(serve, /reloaded/)[0]).toMatch(
      new RegExp(
        `^certgate serve: reloaded TLS certificate --tls-cert \\S+ \\(serial ${serialOf(serverB)}, valid until \\S+\\)$`,
      ),
    );

    expect((await presentedCertificate(port(serve))).serialNumber).toBe(serialOf(serverB));
    expect(await list(storeClient(serve.url, admin2))).toBe("admitted");
    expect(await list(storeClient(serve.url, admin1))).toBe(Code.Unauthenticated);
    // The connection made before the rotation was left alone.
    expect(await list(open)).toBe("admitted");
  }, 60_000);

  it("reloads on SIGHUP what the folder watch cannot see, says when nothing changed, and refuses a key that does not match", async () => {
    // tls.crt -> ../hidden/crt -> ../pem-N/cert.pem: retargeting the link in
    // hidden/ to a new folder touches no folder that is watched.
    const conf = join(tmp, "conf");
    const hidden = join(tmp, "hidden");
    await mkdir(conf);
    await mkdir(hidden);
    let version = 0;
    const point = async (name: "crt" | "key", content: string) => {
      const folder = join(tmp, `pem-${++version}`);
      await mkdir(folder);
      await writeFile(join(folder, "file.pem"), content);
      await symlink(join(folder, "file.pem"), join(hidden, `${name}.tmp`));
      await rename(join(hidden, `${name}.tmp`), join(hidden, name));
    };
    await point("crt", pki.server.cert);
    await point("key", pki.server.key);
    await symlink(join(hidden, "crt"), join(conf, "tls.crt"));
    await symlink(join(hidden, "key"), join(conf, "tls.key"));
    const serve = await startServe([
      "--data-dir",
      join(tmp, "data2"),
      "--tls-cert",
      join(conf, "tls.crt"),
      "--tls-key",
      join(conf, "tls.key"),
      "--admin",
      sha256(admin1),
    ]);
    serves.push(serve);

    await point("crt", serverB.cert);
    await point("key", serverB.key);
    serve.child.kill("SIGHUP");
    await waitFor(() => stderrLines(serve, /reloaded TLS certificate/).length === 1, "the reload on SIGHUP");
    expect(stderrLines(serve, /SIGHUP/)).toEqual([
      "certgate serve: SIGHUP: reading the TLS files (--tls-cert, --tls-key)",
    ]);
    expect((await presentedCertificate(port(serve))).serialNumber).toBe(serialOf(serverB));

    serve.child.kill("SIGHUP");
    await waitFor(() => stderrLines(serve, /unchanged/).length === 1, "the unchanged line");
    expect(stderrLines(serve, /unchanged/)).toEqual([
      "certgate serve: SIGHUP: the TLS files are unchanged (--tls-cert, --tls-key)",
    ]);

    // A new certificate whose key has not been replaced yet.
    await point("crt", serverC.cert);
    serve.child.kill("SIGHUP");
    await waitFor(() => stderrLines(serve, /refused the files/).length === 1, "the refusal");
    expect(stderrLines(serve, /refused the files/)[0]).toMatch(
      new RegExp(
        `^certgate serve: kept the TLS certificate in use \\(serial ${serialOf(serverB)}\\); refused the files: the key in --tls-key \\S+tls\\.key does not belong to the certificate in --tls-cert \\S+tls\\.crt$`,
      ),
    );
    expect((await presentedCertificate(port(serve))).serialNumber).toBe(serialOf(serverB));
    expect(await list(storeClient(serve.url, admin1))).toBe("admitted");
    expect(await serve.stop()).toBe(0);
  }, 60_000);
});
