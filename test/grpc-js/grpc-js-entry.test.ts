import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
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

describe("certgate/grpc-js with an unsupported @grpc/grpc-js", () => {
  // A stand-in for @grpc/grpc-js 1.8: the classes certgate's modules load
  // with, and no ServerInterceptingCall (which came with server interceptors).
  const fakeModule = `"use strict";
class Metadata { set() {} }
class ServerCredentials { constructor() {} }
class Server {}
exports.Metadata = Metadata;
exports.ServerCredentials = ServerCredentials;
exports.Server = Server;
`;
  const fakeHook = pathToFileURL(join(process.cwd(), "test", "support", "fake-package.mjs")).href;

  it("loads, and refuses to create the interceptor with certgate's message, naming the version", async () => {
    const dir = await mkdtemp(join(tmpdir(), "certgate-grpc-js-1.8-"));
    try {
      await writeFile(join(dir, "index.js"), fakeModule);
      await writeFile(join(dir, "package.json"), JSON.stringify({ name: "@grpc/grpc-js", version: "1.8.22" }));
      const script = `import { fakePackage } from ${JSON.stringify(fakeHook)};
fakePackage("@grpc/grpc-js", ${JSON.stringify(dir)});
const m = await import("certgate/grpc-js");
try {
  m.createClientCertServerInterceptor({ store: m.createThumbprintStore("00".repeat(32)) });
  console.log("created");
} catch (error) {
  console.log(error.message);
}`;
      const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script], { cwd: process.cwd() });
      expect(stdout.trim()).toMatch(
        /^certgate: @grpc\/grpc-js 1\.8\.22 is not supported: .*no ServerInterceptingCall.*supports the layout of @grpc\/grpc-js 1\.14/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
