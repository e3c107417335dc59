import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

// @connectrpc/connect-node is an optional peer dependency: the built package
// (dist/, which `npm ci` builds) must load without it. The script hides the
// package with a module hook and imports "certgate", which resolves to this
// package's own dist/. .ci/adapters.sh runs the same script in a project
// installed from `npm pack`.
describe("certgate without @connectrpc/connect-node", () => {
  it("loads, builds the gate and the interceptor, and names the package where the store server needs it", async () => {
    const script = fileURLToPath(new URL("../adapters/without-connect-node.mjs", import.meta.url));
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [script], (error, stdout, stderr) =>
        resolve({ code: error === null ? 0 : Number(error.code ?? 1), stdout, stderr }),
      );
    });
    expect(stderr).toBe("");
    expect(stdout.trim().split("\n")).toEqual([
      "connect-node hidden: ERR_MODULE_NOT_FOUND",
      "certgate loaded: gate, interceptor, context values",
      "store server: certgate: the certificate store server needs @connectrpc/connect-node; install it (npm install @connectrpc/connect-node)",
    ]);
    expect(code).toBe(0);
  });
});
