import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

// @opentelemetry/api is an optional peer dependency: the built package
// (dist/, which `npm ci` builds) must load and decide without it. The script
// hides the package from import and require, and imports "certgate", which
// resolves to this package's own dist/. .ci/adapters.sh runs the same script
// in a project installed from `npm pack`, where the package is absent.
describe("certgate without @opentelemetry/api", () => {
  it("loads, admits and refuses calls on a real TLS server through the gate and the interceptor, and records nothing", async () => {
    const script = fileURLToPath(new URL("../adapters/without-opentelemetry.mjs", import.meta.url));
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [script], (error, stdout, stderr) =>
        resolve({ code: error === null ? 0 : Number(error.code ?? 1), stdout, stderr }),
      );
    });
    expect(stderr).toBe("");
    expect(stdout.trim().split("\n")).toEqual([
      "opentelemetry hidden: ERR_MODULE_NOT_FOUND, MODULE_NOT_FOUND",
      "alice: hi, hi",
      "bob: client certificate not allowed",
      "closed",
    ]);
    expect(code).toBe(0);
  });
});
