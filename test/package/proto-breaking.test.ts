// buf breaking against the committed descriptor set of the released proto
// (proto/released/certgate-v1.binpb), run the way .ci/run runs it.
import { execFile } from "node:child_process";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";

const repo = fileURLToPath(new URL("../..", import.meta.url));
const buf = join(repo, "node_modules", ".bin", "buf");
const released = join(repo, "proto", "released", "certgate-v1.binpb");

function breaking(cwd: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(buf, ["breaking", "proto", "--against", released], { cwd }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1;
      resolve({ code, output: stdout + stderr });
    });
  });
}

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

/** Copies buf.yaml and proto/ into a temporary folder, as the checks see them. */
async function copyOfProto(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "certgate-proto-"));
  dirs.push(dir);
  await cp(join(repo, "buf.yaml"), join(dir, "buf.yaml"));
  await cp(join(repo, "proto"), join(dir, "proto"), { recursive: true });
  return dir;
}

async function edit(dir: string, file: string, from: string, to: string): Promise<void> {
  const path = join(dir, "proto", file);
  const text = await readFile(path, "utf8");
  expect(text).toContain(from);
  await writeFile(path, text.replace(from, to));
}

describe("buf breaking against proto/released", () => {
  it("passes for the proto as committed", async () => {
    const result = await breaking(repo);
    expect(result.output).toBe("");
    expect(result.code).toBe(0);
  });

  it("passes for an added field", async () => {
    const dir = await copyOfProto();
    await edit(dir, "certgate/v1/errors.proto", "string procedure = 2;", "string procedure = 2;\n  string hint = 99;");
    expect(await breaking(dir)).toEqual({ code: 0, output: "" });
  });

  it("fails for a renumbered field, naming it", async () => {
    const dir = await copyOfProto();
    await edit(dir, "certgate/v1/errors.proto", "string procedure = 2;", "string procedure = 3;");
    const result = await breaking(dir);
    expect(result.code).not.toBe(0);
    expect(result.output).toMatch(/field "2" with name "procedure" on message "ClientCertificateError" was deleted/);
  });

  it("fails for a renamed field", async () => {
    const dir = await copyOfProto();
    await edit(dir, "certgate/v1/errors.proto", "string procedure = 2;", "string method = 2;");
    const result = await breaking(dir);
    expect(result.code).not.toBe(0);
    expect(result.output).toMatch(/procedure/);
  });
});
