import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";

// Each framework is an optional peer dependency of its own entry point:
// the built package is loaded in a child process whose module resolution
// refuses one framework, as on a machine where it is not installed.

const run = promisify(execFile);
// The same hook as the optional-peer scripts of test/adapters/.
const hideModule = pathToFileURL(join(process.cwd(), "test", "adapters", "hide-packages.mjs")).href;
const frameworks: Record<string, string[]> = {
  connect: [
    "@connectrpc/connect",
    "@connectrpc/connect-node",
    "@connectrpc/connect-express",
    "@connectrpc/connect-fastify",
  ],
  "grpc-js": ["@grpc/grpc-js", "@grpc/proto-loader"],
};

beforeAll(() => {
  if (!existsSync(join(process.cwd(), "dist", "grpc-js", "index.js"))) {
    throw new Error("dist/ is not built: run npm run build first");
  }
});

// Loads an entry point of the built package in a child process where the
// framework's packages cannot be found; certgate's dist is ESM, and grpc-js
// (CommonJS) requires neither framework.
async function load(entry: string, hidden: keyof typeof frameworks): Promise<string[]> {
  const script = `import { hidePackages } from ${JSON.stringify(hideModule)};
hidePackages(${JSON.stringify(frameworks[hidden])});
const m = await import(${JSON.stringify(entry)});
console.log(JSON.stringify(Object.keys(m).sort()));`;
  const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script], { cwd: process.cwd() });
  return JSON.parse(stdout) as string[];
}

describe("package entry points", () => {
  it("certgate/grpc-js loads without Connect", async () => {
    expect(await load("certgate/grpc-js", "connect")).toEqual(
      expect.arrayContaining(["clientCertificateOf", "createClientCertServerInterceptor", "createServerCredentials"]),
    );
  });

  it("the package root loads without grpc-js", async () => {
    expect(await load("certgate", "grpc-js")).toContain("createClientCertInterceptor");
  });

  it("the hook does block: the package root needs Connect", async () => {
    await expect(load("certgate", "connect")).rejects.toThrow(/@connectrpc\/connect.*hidden by the test/);
  });
});
