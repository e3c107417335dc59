// examples/store-api-server.ts when the store service cannot be reached.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../support/harness.js";
import { killAll, startServe } from "../support/cli-harness.js";
import { startExample, type ExampleProcess } from "../support/example-process.js";

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "certgate-store-api-"));
});
afterAll(async () => {
  killAll();
  await rm(tmp, { recursive: true, force: true });
});

describe("examples/store-api-server.ts with no store reachable", () => {
  let example: ExampleProcess;
  let storeUrl: string;
  beforeAll(async () => {
    // A serve that created the development certificates, then stopped: its
    // address refuses connections.
    const dataDir = join(tmp, "store");
    const serve = await startServe(["--data-dir", dataDir, "--no-console"]);
    storeUrl = serve.url;
    await serve.stop();
    example = await startExample("store-api-server", {
      cwd: tmp,
      env: { PORT: "0", CERTGATE_STORE: storeUrl, CERTGATE_DEV_DIR: join(dataDir, "dev") },
      ready: /API server on/,
    });
  });
  afterAll(async () => {
    await example?.stop();
  });

  it("logs the URL, the cause and a delay in rounded seconds", async () => {
    await waitFor(() => /retrying in/.test(example.output().stdout), "a retry line");
    const line = example
      .output()
      .stdout.split("\n")
      .find((l) => l.includes("retrying in"));
    const escaped = storeUrl.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    expect(line).toMatch(new RegExp(`^store ${escaped} unreachable \\(.*ECONNREFUSED.*\\); retrying in \\d+\\.\\d s$`));
  });
});
