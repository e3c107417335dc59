import * as http2 from "node:http2";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { CertificateStoreService } from "../../src/gen/certgate/v1/certificate_store_pb.js";
import { parseCertificate } from "../../src/core/certificate.js";
import { issueDevCertificate, type IssuedCertificate } from "../../src/dev-certificates.js";
import {
  createCliFixture,
  expectFailure,
  killAll,
  repo,
  run,
  runHere,
  serveTlsArgs,
  startServe,
} from "../support/cli-harness.js";
import { waitFor, type TestPki } from "../support/harness.js";
import { runCli } from "../../src/cli/main.js";

let tmp: string;
let pki: TestPki;
let admin: IssuedCertificate;
let files: Record<string, string>;

beforeAll(async () => {
  ({ tmp, pki, admin, files } = await createCliFixture());
});

afterAll(async () => {
  killAll();
  await rm(tmp, { recursive: true, force: true });
});

describe("certgate serve in development mode", () => {
  it("creates its certificates once under DIR/dev, prints commands that work, and reuses them after a restart", async () => {
    const dataDir = join(tmp, "fresh", "data"); // created when missing
    const first = await startServe(["--data-dir", dataDir]);
    const dev = join(dataDir, "dev");
    const { stdout } = first.output();
    expect(stdout).toContain(`Development mode: certificates created in ${dev}`);
    for (const name of ["server", "admin", "reader", "client"]) {
      expect((await stat(join(dev, `${name}-key.pem`))).mode & 0o777).toBe(0o600);
      parseCertificate(await readFile(join(dev, `${name}.pem`), "utf8"));
    }
    const ca = await readFile(join(dev, "ca.pem"), "utf8");

    // The printed upload command, as pasted (certgate itself run the way this test runs it).
    const upload = /^ {2}\S.* upload (.+)$/m.exec(stdout)?.[1]?.split(" ");
    expect(upload).toContain("--store");
    const uploaded = await run(["upload", ...upload!]);
    expect(uploaded.code, uploaded.stderr).toBe(0);
    expect(uploaded.stdout).toMatch(/^uploaded .*client\.pem as example-client /);

    // The printed curl command: the Connect protocol with JSON, over HTTP/2.
    const curl = /curl --cacert (\S+) \\\n +--cert (\S+) --key (\S+)/.exec(stdout);
    const path = /(https:\/\/\S+\/certgate\.v1\.CertificateStoreService\/ListCertificates)/.exec(stdout)?.[1];
    const [cacert, cert, key] = await Promise.all(curl!.slice(1, 4).map((f) => readFile(resolve(repo, f!), "utf8")));
    const body = await postJson(path!, { ca: cacert!, cert: cert!, key: key! });
    expect(body.status).toBe(200);
    expect(JSON.parse(body.text)).toMatchObject({ certificates: [{ certificateId: "example-client" }] });

    expect(await first.stop("SIGTERM")).toBe(0);
    expect(first.output().stderr).toContain("certgate serve: stopped");

    const second = await startServe(["--data-dir", dataDir]);
    try {
      expect(second.output().stdout).toContain(`Development mode: certificates reused in ${dev}`);
      expect(await readFile(join(dev, "ca.pem"), "utf8")).toBe(ca);
      const env = {
        CERTGATE_STORE: second.url,
        CERTGATE_CA: join(dev, "ca.pem"),
        CERTGATE_CERT: join(dev, "reader.pem"),
        CERTGATE_KEY: join(dev, "reader-key.pem"),
      };
      const list = await runHere(["list", "--json"], env);
      expect(JSON.parse(list.stdout)).toMatchObject({ certificates: [{ certificateId: "example-client" }] });
      // The stored API client certificate is no key to the store itself.
      const asClient = { ...env, CERTGATE_CERT: join(dev, "client.pem"), CERTGATE_KEY: join(dev, "client-key.pem") };
      expectFailure(await runHere(["list"], asClient), 1, /^certgate: list: the store refused the client certificate/);
    } finally {
      await second.stop();
    }
  }, 90_000);

  it("starts on a data folder with leftover temporary, torn and empty files, and serves only the whole certificates", async () => {
    const dataDir = join(tmp, "leftovers");
    await mkdir(join(dataDir, ".dev-0123456789ab.tmp"), { recursive: true });
    await writeFile(join(dataDir, ".dev-0123456789ab.tmp", "ca.pem"), pki.ca.cert.slice(0, 100));
    await writeFile(join(dataDir, "whole.pem"), pki.alice.cert);
    await writeFile(join(dataDir, ".certgate-0123456789abcdef.tmp"), pki.bob.cert.slice(0, 200));
    await writeFile(join(dataDir, "torn.pem"), pki.bob.cert.slice(0, 200));
    await writeFile(join(dataDir, "empty.pem"), "");
    const serve = await startServe(["--data-dir", dataDir]);
    try {
      const dev = join(dataDir, "dev");
      const env = {
        CERTGATE_STORE: serve.url,
        CERTGATE_CA: join(dev, "ca.pem"),
        CERTGATE_CERT: join(dev, "admin.pem"),
        CERTGATE_KEY: join(dev, "admin-key.pem"),
      };
      const list = await runHere(["list", "--json"], env);
      expect(list.code, list.stderr).toBe(0);
      expect(
        (JSON.parse(list.stdout) as { certificates: { certificateId: string }[] }).certificates.map(
          (c) => c.certificateId,
        ),
      ).toEqual(["whole"]);
      expect(serve.output().stderr).toMatch(/skipped .*torn\.pem: /);
      expect(serve.output().stdout).toContain("(1 certificate)");
      // The staging folder of an interrupted first start is gone.
      expect((await readdir(dataDir)).filter((f) => f.startsWith(".dev-"))).toEqual([]);
    } finally {
      await serve.stop();
    }
  }, 60_000);
});

function postJson(
  url: string,
  tls: { ca: string; cert: string; key: string },
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(new URL(url).origin, tls);
    session.on("error", reject);
    const request = session.request({
      ":method": "POST",
      ":path": new URL(url).pathname,
      "content-type": "application/json",
    });
    let status = 0;
    let text = "";
    request.on("response", (headers) => (status = Number(headers[":status"])));
    request.on("data", (d: Buffer) => (text += d.toString()));
    request.on("end", () => {
      session.close();
      resolve({ status, text });
    });
    request.on("error", reject);
    request.end("{}");
  });
}

describe("certgate serve killed with SIGKILL mid-upload", () => {
  it("keeps every acknowledged certificate and leaves no partial one behind", async () => {
    const dataDir = join(tmp, "crash");
    const args = ["--data-dir", dataDir, ...serveTlsArgs({ files }), "--admin", parseCertificate(admin.cert).sha256];
    const count = 150;
    const certificates = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        issueDevCertificate(pki.ca, { commonName: `crash ${i}`, usages: ["client"] }),
      ),
    );
    const clientFor = (url: string) =>
      createClient(
        CertificateStoreService,
        createConnectTransport({
          baseUrl: url,
          httpVersion: "2",
          nodeOptions: { ca: pki.ca.cert, cert: admin.cert, key: admin.key },
        }),
      );

    const serve = await startServe(args);
    const client = clientFor(serve.url);
    const attempted = new Map<string, string>();
    const acknowledged = new Map<string, string>();
    let failed = 0;
    let next = 0;
    let killed = false;
    // 16 uploads in flight at all times; the 40th acknowledgement kills the
    // service, so the others are cut off somewhere between request and rename.
    const worker = async () => {
      while (!killed && next < count) {
        const i = next++;
        const id = `crash-${i}`;
        const der = certificates[i]!.der;
        attempted.set(id, parseCertificate(der).sha256);
        try {
          await client.createCertificate({ certificate: der, certificateId: id });
          acknowledged.set(id, parseCertificate(der).sha256);
          if (acknowledged.size === 40 && !killed) {
            killed = true;
            serve.child.kill("SIGKILL");
          }
        } catch {
          failed++;
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    expect(await serve.stop()).toBe("SIGKILL");
    expect(killed).toBe(true);
    expect(failed).toBeGreaterThan(0); // the kill did cut uploads off

    const again = await startServe(args);
    try {
      const restarted = clientFor(again.url);
      const listed = new Map<string, string>();
      for (const c of (await restarted.listCertificates({ pageSize: 1000 })).certificates) {
        listed.set(c.certificateId, c.sha256Thumbprint);
        // Whole certificates only: the stored DER is what was sent for the id.
        expect(parseCertificate(c.der).sha256).toBe(attempted.get(c.certificateId));
      }
      for (const [id, sha256] of acknowledged) expect(listed.get(id), id).toBe(sha256);
      for (const id of listed.keys()) expect(attempted.has(id), id).toBe(true);
      // Every certificate file in the folder loaded: no torn file was skipped.
      expect(again.output().stderr).not.toMatch(/skipped/);
      const pemFiles = (await readdir(dataDir)).filter((f) => f.endsWith(".pem"));
      expect(pemFiles.length).toBe(listed.size);
      // And the restarted store takes writes.
      await restarted.createCertificate({ certificate: pki.bob.der, certificateId: "after-restart" });
    } finally {
      await again.stop();
    }
  }, 90_000);
});

describe("certgate serve role folders", () => {
  // Review finding in `certgate serve`: a role folder that is the data folder
  // would give every uploaded API client certificate that role.

  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), "certgate-review-cli-"));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  describe("--admin-dir and --reader-dir", () => {
    it("admits an --admin-dir that is a folder of its own, and serves", async () => {
      const data = join(tmp, "data-a");
      const admins = join(tmp, "admins");
      await mkdir(admins, { recursive: true });
      const stop = new AbortController();
      let stdout = "";
      let stderr = "";
      const done = runCli(["serve", "--listen", "127.0.0.1:0", "--data-dir", data, "--admin-dir", admins], {
        stdout: (text) => void (stdout += text),
        stderr: (text) => void (stderr += text),
        env: {},
        cwd: tmp,
        signal: stop.signal,
      });
      let exited = false;
      void done.finally(() => (exited = true));
      try {
        await waitFor(() => exited || stdout.includes("listening on https://"), "certgate serve to listen", 30_000);
        expect(stdout, stderr).toMatch(/listening on https:\/\//);
      } finally {
        stop.abort();
        await done;
      }
    });

    it("refuses an --admin-dir that is the data folder, before anything starts", async () => {
      const data = join(tmp, "data-b");
      await mkdir(data, { recursive: true });
      const result = await runHere(
        ["serve", "--listen", "127.0.0.1:0", "--data-dir", data, "--admin-dir", data],
        {},
        tmp,
      );
      expectFailure(result, 2, /--admin-dir .* is the data folder/);
      // Refused before development certificates were made.
      await expect(import("node:fs").then((fs) => fs.existsSync(join(data, "dev")))).resolves.toBe(false);
    });

    it("refuses a --reader-dir that names the data folder by another path", async () => {
      const data = join(tmp, "data-c");
      await mkdir(data, { recursive: true });
      const result = await runHere(
        ["serve", "--listen", "127.0.0.1:0", "--data-dir", "data-c", "--reader-dir", `${data}/../data-c/`],
        {},
        tmp,
      );
      expectFailure(result, 2, /--reader-dir .* is the data folder/);
    });
  });
});
