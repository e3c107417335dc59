import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../src/cli/main.js";
import { expectFailure, runHere } from "./support/cli-harness.js";
import { waitFor } from "./support/harness.js";

// Review finding in `certgate serve`: a role folder that is the data folder
// would give every uploaded API client certificate that role.

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "certgate-review-cli-"));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe("certgate serve", () => {
  it("admits an --admin-dir that is a folder of its own, and serves", async () => {
    const data = join(tmp, "data-a");
    const admins = join(tmp, "admins");
    await mkdir(admins, { recursive: true });
    const stop = new AbortController();
    let stdout = "";
    let stderr = "";
    const done = runCli(["serve", "--listen", "127.0.0.1:0", "--data-dir", data, "--admin-dir", admins], {
      stdout: (text) => void (stdout += text),
      stderr: (text) => void (stderr += text),
      env: {},
      cwd: tmp,
      signal: stop.signal,
    });
    let exited = false;
    void done.finally(() => (exited = true));
    try {
      await waitFor(() => exited || stdout.includes("listening on https://"), "certgate serve to listen", 30_000);
      expect(stdout, stderr).toMatch(/listening on https:\/\//);
    } finally {
      stop.abort();
      await done;
    }
  });

  it("refuses an --admin-dir that is the data folder, before anything starts", async () => {
    const data = join(tmp, "data-b");
    await mkdir(data, { recursive: true });
    const result = await runHere(["serve", "--listen", "127.0.0.1:0", "--data-dir", data, "--admin-dir", data], {}, tmp);
    expectFailure(result, 2, /--admin-dir .* is the data folder/);
    // Refused before development certificates were made.
    await expect(import("node:fs").then((fs) => fs.existsSync(join(data, "dev")))).resolves.toBe(false);
  });

  it("refuses a --reader-dir that names the data folder by another path", async () => {
    const data = join(tmp, "data-c");
    await mkdir(data, { recursive: true });
    const result = await runHere(
      ["serve", "--listen", "127.0.0.1:0", "--data-dir", "data-c", "--reader-dir", `${data}/../data-c/`],
      {},
      tmp,
    );
    expectFailure(result, 2, /--reader-dir .* is the data folder/);
  });
});
