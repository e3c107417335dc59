import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// Each framework is an optional peer dependency of its own entry point:
// the built package is loaded in a child process whose module resolution
// refuses one framework, as on a machine where it is not installed.

const run = promisify(execFile);
let dir: string;
let hook: string;

beforeAll(async () => {
  if (!existsSync(join(process.cwd(), "dist", "grpc-js", "index.js"))) {
    throw new Error("dist/ is not built: run npm run build first");
  }
  dir = await mkdtemp(join(tmpdir(), "certgate-entry-"));
  hook = join(dir, "block.mjs");
  // A resolve hook that fails for every import under BLOCK. certgate's dist
  // is ESM; grpc-js (CommonJS) requires neither framework.
  await writeFile(
    hook,
    `import { register } from "node:module";
const prefix = JSON.stringify(process.env.BLOCK);
register("data:text/javascript," + encodeURIComponent(\`export async function resolve(s, c, next) {
  if (s.startsWith(\${prefix})) throw Object.assign(new Error("Cannot find package '" + s + "' (blocked)"), { code: "ERR_MODULE_NOT_FOUND" });
  return next(s, c);
}\`));
`,
  );
});

afterAll(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

async function load(entry: string, block: string): Promise<string[]> {
  const script = `const m = await import(${JSON.stringify(entry)}); console.log(JSON.stringify(Object.keys(m).sort()));`;
  const { stdout } = await run(
    process.execPath,
    ["--import", pathToFileURL(hook).href, "--input-type=module", "-e", script],
    {
      cwd: process.cwd(),
      env: { ...process.env, BLOCK: block },
    },
  );
  return JSON.parse(stdout) as string[];
}

describe("package entry points", () => {
  it("certgate/grpc-js loads without Connect", async () => {
    expect(await load("certgate/grpc-js", "@connectrpc/")).toEqual(
      expect.arrayContaining(["clientCertificateOf", "createClientCertServerInterceptor", "createServerCredentials"]),
    );
  });

  it("the package root loads without grpc-js", async () => {
    expect(await load("certgate", "@grpc/")).toContain("createClientCertInterceptor");
  });

  it("the hook does block: the package root needs Connect", async () => {
    await expect(load("certgate", "@connectrpc/")).rejects.toThrow(/@connectrpc\/connect.*blocked/);
  });
});
