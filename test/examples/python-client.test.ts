// examples/python/store_client.py, run with the system's grpcio against a
// real `certgate serve`.
import { execFile, execFileSync } from "node:child_process";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCertificate } from "../../src/index.js";
import {
  createCliFixture,
  killAll,
  repo,
  run,
  serveTlsArgs,
  startServe,
  type CliFixture,
  type Serve,
} from "../support/cli-harness.js";

/** The first Python that imports grpc and grpc_tools (CERTGATE_PYTHON chooses). */
function findPython(): string | undefined {
  const candidates = [process.env.CERTGATE_PYTHON, "python3", "/usr/bin/python3"].filter(
    (p): p is string => p !== undefined && p !== "",
  );
  for (const python of candidates) {
    try {
      execFileSync(python, ["-c", "import grpc, grpc_tools.protoc"], { stdio: "ignore" });
      return python;
    } catch {}
  }
  return undefined;
}

const python = findPython();
if (python === undefined && process.env.CI === "true") {
  throw new Error(
    "python3 with grpcio and grpc_tools is required under CI=true (apt-get install python3-grpcio python3-grpc-tools)",
  );
}

function runPython(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      python!,
      [join(repo, "examples", "python", "store_client.py"), ...args],
      { timeout: 60_000 },
      (error, stdout, stderr) => {
        resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr });
      },
    );
  });
}

describe.skipIf(python === undefined)(
  "examples/python/store_client.py (skipped: no python3 with grpcio and grpc_tools)",
  () => {
    let fx: CliFixture;
    let serve: Serve;

    beforeAll(async () => {
      fx = await createCliFixture();
      serve = await startServe([
        ...["--data-dir", join(fx.tmp, "store"), ...serveTlsArgs(fx)],
        ...["--admin", parseCertificate(fx.admin.cert).sha256, "--no-console"],
      ]);
    });

    afterAll(async () => {
      await serve?.stop();
      killAll();
      if (fx !== undefined) await rm(fx.tmp, { recursive: true, force: true });
    });

    it("uploads, lists every page, watches a change and decodes a refusal's detail", async () => {
      const target = new URL(serve.url).host;
      const common = ["--target", target, "--server-name", "localhost", "--ca", fx.files["ca.pem"]!];
      const admin = ["--cert", fx.files["admin.pem"]!, "--key", fx.files["admin-key.pem"]!];
      const refused = ["--refused-cert", fx.files["bob.pem"]!, "--refused-key", fx.files["bob-key.pem"]!];
      // Two certificates stored first, so that listing takes pages of one.
      const upload = await run([
        "upload",
        "--store",
        serve.url,
        "--ca",
        fx.files["ca.pem"]!,
        ...admin,
        fx.files["foreign.pem"]!,
        fx.files["reader.pem"]!,
      ]);
      expect(upload.code, upload.stderr).toBe(0);
      const result = await runPython([
        ...common,
        ...admin,
        "--upload",
        fx.files["alice.pem"]!,
        ...refused,
        "--page-size",
        "1",
      ]);
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
      const alice = parseCertificate(fx.pki.alice.cert);
      const lines = result.stdout.trim().split("\n");
      expect(lines[0]).toMatch(new RegExp(`^uploaded (\\S+) sha256 ${alice.sha256} subject `));
      const id = /^uploaded (\S+)/.exec(lines[0]!)![1]!;
      expect(lines[1]).toMatch(/^listed 3 certificates in 3 pages$/);
      expect(lines[2]).toMatch(/^watch: snapshot of 3 certificates at revision \d+$/);
      expect(lines[3]).toMatch(new RegExp(`^watch: change at revision \\d+: deleted ${id}$`));
      expect(lines[4]).toBe(
        "refused: UNAUTHENTICATED reason not_allowed procedure /certgate.v1.CertificateStoreService/ListCertificates",
      );
    });
  },
);
