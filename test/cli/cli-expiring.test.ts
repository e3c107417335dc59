import { execFile } from "node:child_process";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCertificate } from "../../src/core/certificate.js";
import { issueDevCertificate } from "../../src/dev-certificates.js";
import { parseDuration } from "../../src/cli/duration.js";
import { createCertificateStoreServer } from "../../src/service/certificate-store-server.js";
import { createMemoryStore } from "../../src/stores/memory-store.js";
import {
  clientEnv,
  createCliFixture,
  expectFailure,
  killAll,
  repo,
  run,
  runHere,
  serveAccessArgs,
  startServe,
  type CliFixture,
  type Serve,
} from "../support/cli-harness.js";

const minute = 60_000;
const hour = 60 * minute;
const day = 24 * hour;
// Ids in an order unlike the expiry order; validity ends this long from now.
const expiries: Record<string, number> = {
  "a-month": 40 * day,
  "b-soon": 1 * hour,
  "c-old": -2 * day,
  "d-year": 400 * day,
  "e-week": 5 * day,
  "f-today": 20 * hour,
};

let fixture: CliFixture;
let serve: Serve;
const notAfter: Record<string, Date> = {};

beforeAll(async () => {
  fixture = await createCliFixture();
  const { tmp, pki } = fixture;
  const dataDir = join(tmp, "store");
  await mkdir(dataDir);
  const now = Date.now();
  for (const [id, ms] of Object.entries(expiries)) {
    const issued = await issueDevCertificate(pki.ca, {
      commonName: id,
      usages: ["client"],
      notBefore: new Date(now - 30 * day),
      notAfter: new Date(now + ms),
    });
    notAfter[id] = parseCertificate(issued.der).notAfter;
    await writeFile(join(dataDir, `${id}.pem`), issued.cert);
  }
  serve = await startServe([...["--data-dir", dataDir], ...serveAccessArgs(fixture)]);
});

afterAll(async () => {
  await serve?.stop();
  killAll();
  await rm(fixture.tmp, { recursive: true, force: true });
});

const as = (who: "admin" | "reader" | "foreign") => clientEnv(fixture, who, serve.url);

const utc = (date: Date) => `${date.toISOString().slice(0, 19).replace("T", " ")} UTC`;

describe("certgate list --expiring-within", () => {
  it("prints the certificates expiring within 30d, soonest first, with their expiry dates", async () => {
    const result = await run(["list", "--expiring-within", "30d"], as("reader"));
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^EXPIRES\s+ID\s+SUBJECT$/);
    const rows = lines.slice(1);
    expect(rows.map((row) => row.split(/\s{2,}/)[1])).toEqual(["c-old", "b-soon", "f-today", "e-week"]);
    expect(rows[0]).toContain(`${utc(notAfter["c-old"]!)} (expired)`);
    expect(rows[1]).toMatch(new RegExp(`^${utc(notAfter["b-soon"]!)} \\(in \\d+ minutes?\\)\\s+b-soon\\s+CN=b-soon$`));
    expect(rows[2]).toContain(`${utc(notAfter["f-today"]!)} (in 19 hours)`);
    expect(rows[3]).toContain(`${utc(notAfter["e-week"]!)} (in 4 days)`);
  });

  it("reads 12h and 90m, and prints JSON in the same order", async () => {
    const [hours, minutes] = await Promise.all([
      run(["list", "--expiring-within", "12h", "--json"], as("admin")),
      run(["list", "--expiring-within", "90m", "--json"], as("reader")),
    ]);
    for (const result of [hours, minutes]) {
      expect(result.code, result.stderr).toBe(0);
      const ids = (JSON.parse(result.stdout) as { certificates: { certificateId: string; notAfter: string }[] })
        .certificates;
      expect(ids.map((c) => c.certificateId)).toEqual(["c-old", "b-soon"]);
      expect(new Date(ids[1]!.notAfter).getTime()).toBe(notAfter["b-soon"]!.getTime());
    }
  });

  it("lists only the expired ones within 0s, and says so and exits 0 when nothing expires", async () => {
    const expired = await runHere(["list", "--expiring-within", "0s"], as("reader"));
    expect(expired.code, expired.stderr).toBe(0);
    expect(expired.stdout).toMatch(/^EXPIRES\s+ID\s+SUBJECT\n.* \(expired\)\s+c-old\s+CN=c-old\n$/);
    // A store holding only a certificate that expires in a year.
    const { pki, reader } = fixture;
    const store = createMemoryStore({ certificates: [pki.alice.cert] });
    const server = createCertificateStoreServer({
      store,
      cert: pki.server.cert,
      key: pki.server.key,
      access: { reader: { thumbprints: [parseCertificate(reader.cert).sha256] } },
    });
    try {
      const { url } = await server.listen();
      const none = await runHere(["list", "--expiring-within", "30d"], { ...as("reader"), CERTGATE_STORE: url });
      expect(none.code, none.stderr).toBe(0);
      expect(none.stdout).toBe("no certificates expire within 30d\n");
      const all = await runHere(["list", "--expiring-within", "400d"], { ...as("reader"), CERTGATE_STORE: url });
      expect(all.stdout).toContain("CN=alice");
    } finally {
      await server.close();
      await store.close();
    }
  });

  it("refuses a malformed duration with exit code 2, before calling the store", async () => {
    for (const bad of ["30", "d", "-1d", "1.5d", "1y", "30 d", "99999999999d"]) {
      // The = form: "-1d" alone would read as an option.
      const result = await runHere(["list", `--expiring-within=${bad}`], { CERTGATE_STORE: "https://127.0.0.1:1" });
      expectFailure(result, 2, /^certgate: invalid --expiring-within .*30d, 12h, 90m/);
    }
  });

  it("fails with the store's refusal for a certificate on no list", async () => {
    const result = await run(["list", "--expiring-within", "30d"], as("foreign"));
    expectFailure(result, 1, /unauthenticated|not allowed/i);
    expect(result.stdout).toBe("");
  });
});

describe("parseDuration()", () => {
  it("reads seconds, minutes, hours, days and weeks, and combinations", () => {
    expect(parseDuration("30d")).toBe(30 * day);
    expect(parseDuration("12h")).toBe(12 * hour);
    expect(parseDuration("90m")).toBe(90 * minute);
    expect(parseDuration("45s")).toBe(45_000);
    expect(parseDuration("2w")).toBe(14 * day);
    expect(parseDuration("1d12h")).toBe(36 * hour);
    for (const bad of ["", "30", "d", "-1d", "1.5d", "1y", "30 d", " 30d", "1000000000d"])
      expect(parseDuration(bad), bad).toBeUndefined();
  });
});

describe("certgate serve reflection", () => {
  it("lists the store's methods to buf curl --reflect with a reader certificate, and refuses one on no list", async () => {
    const buf = join(repo, "node_modules", ".bin", "buf");
    const curl = (who: "reader" | "foreign") =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        const { files } = fixture;
        execFile(
          buf,
          [
            "curl",
            "--reflect",
            "--list-methods",
            "--cacert",
            files["ca.pem"]!,
            "--cert",
            files[`${who}.pem`]!,
            "--key",
            files[`${who}-key.pem`]!,
            serve.url,
          ],
          { timeout: 60_000 },
          (error, stdout, stderr) => resolve({ code: error === null ? 0 : 1, stdout, stderr }),
        );
      });
    const [reader, foreign] = await Promise.all([curl("reader"), curl("foreign")]);
    expect(reader.code, reader.stderr).toBe(0);
    expect(reader.stdout).toContain("certgate.v1.CertificateStoreService/ListCertificates\n");
    expect(foreign.code).toBe(1);
    expect(foreign.stderr).toMatch(/not authenticated/);
  });
});
