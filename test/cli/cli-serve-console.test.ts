import { execFile } from "node:child_process";
import * as http2 from "node:http2";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCertificate } from "../../src/core/certificate.js";
import { createCliFixture, killAll, serveTlsArgs, startServe } from "../support/cli-harness.js";

let tmp: string;
let fixture: Awaited<ReturnType<typeof createCliFixture>>;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "certgate-serve-console-"));
  fixture = await createCliFixture();
});

afterAll(async () => {
  killAll();
  await rm(tmp, { recursive: true, force: true });
  if (fixture !== undefined) await rm(fixture.tmp, { recursive: true, force: true });
});

function getPage(url: string, dev: string): Promise<{ status: number; body: string }> {
  return Promise.all([
    readFile(join(dev, "ca.pem")),
    readFile(join(dev, "admin.pem")),
    readFile(join(dev, "admin-key.pem")),
  ]).then(
    ([ca, cert, key]) =>
      new Promise((resolve, reject) => {
        const session = http2.connect(url, { ca, cert, key });
        session.on("error", reject);
        const req = session.request({ ":path": "/" });
        let status = 0;
        let body = "";
        req.on("response", (h) => (status = Number(h[":status"])));
        req.on("data", (d: Buffer) => (body += d.toString()));
        req.on("error", reject);
        req.on("close", () => {
          session.close();
          resolve({ status, body });
        });
        req.end();
      }),
  );
}

describe("certgate serve's console", () => {
  it("is on by default; development mode writes admin.p12 and reader.p12 and prints their password", async () => {
    const dataDir = join(tmp, "dev-on");
    const serve = await startServe(["--data-dir", dataDir]);
    try {
      const { stdout } = serve.output();
      const dev = join(dataDir, "dev");
      expect(stdout).toContain(`Console: ${serve.url}/`);
      const password = /password (\S+),/.exec(stdout)?.[1];
      expect(password).toBeDefined();
      for (const name of ["admin", "reader"]) {
        const file = join(dev, `${name}.p12`);
        expect((await stat(file)).mode & 0o777).toBe(0o600);
        // OpenSSL reads it with the printed password: the certificate and its key.
        const { stdout: info } = await promisify(execFile)("openssl", [
          "pkcs12",
          "-in",
          file,
          "-passin",
          `pass:${password}`,
          "-nodes",
        ]);
        expect(info).toContain(`certgate ${name}`);
        expect(info).toContain("-----BEGIN PRIVATE KEY-----");
        expect(info.replace(/\r/g, "")).toContain((await readFile(join(dev, `${name}.pem`), "utf8")).trim());
      }
      const page = await getPage(serve.url, dev);
      expect(page.status).toBe(200);
      expect(page.body).toContain('content="admin"');
    } finally {
      expect(await serve.stop()).toBe(0);
    }
  });

  it("is off with --no-console: no page, no PKCS#12 files, no console line", async () => {
    const dataDir = join(tmp, "dev-off");
    const serve = await startServe(["--data-dir", dataDir, "--no-console"]);
    try {
      expect(serve.output().stdout).not.toContain("Console:");
      await expect(stat(join(dataDir, "dev", "admin.p12"))).rejects.toThrow(/ENOENT/);
      const page = await getPage(serve.url, join(dataDir, "dev"));
      expect(page.status).not.toBe(200);
      expect(page.body).not.toContain("certgate-role");
    } finally {
      expect(await serve.stop()).toBe(0);
    }
  });

  it("prints where the console is with the operator's TLS files, and writes no PKCS#12 file", async () => {
    const dataDir = join(tmp, "production");
    const serve = await startServe([
      ...["--data-dir", dataDir, ...serveTlsArgs(fixture)],
      ...["--admin", parseCertificate(fixture.admin.cert).sha256],
    ]);
    try {
      expect(serve.output().stdout).toContain(`console on ${serve.url}/ (for admin and reader client certificates)`);
      await expect(stat(join(dataDir, "dev"))).rejects.toThrow(/ENOENT/);
    } finally {
      expect(await serve.stop()).toBe(0);
    }
  });
});
