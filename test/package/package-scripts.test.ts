// What npm runs for the package's users and for a fresh clone.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { repo } from "../support/cli-harness.js";

const scripts = async () =>
  (JSON.parse(await readFile(join(repo, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;

describe("package.json scripts", () => {
  it("run nothing when the published package is installed", async () => {
    // npm runs these in a dependency (prepare for a git dependency): the
    // package ships dist/ built, so installing it builds nothing.
    const s = await scripts();
    for (const name of ["preinstall", "install", "postinstall", "prepare"]) expect(s[name], name).toBeUndefined();
  });

  it("build dist/ whenever the package is packed or published", async () => {
    expect((await scripts()).prepack).toBe("npm run build");
  });

  it("build the console that npm start and the tests' certgate serve serve, in a fresh clone", async () => {
    const s = await scripts();
    expect(s.prestart).toBe("tsx scripts/build-console.ts");
    expect(s.pretest).toBe("tsx scripts/build-console.ts");
  });

  it("check the proto against the last release and move it on a release", async () => {
    const s = await scripts();
    expect(s["breaking:proto"]).toBe("buf breaking proto --against proto/released/certgate-v1.binpb");
    expect(s["release:proto"]).toBe("buf build --path proto/certgate -o proto/released/certgate-v1.binpb");
  });
});
