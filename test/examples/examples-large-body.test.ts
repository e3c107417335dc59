// Every example server refuses a client without a certificate before it
// reads the request body: a 64 MiB upload (generated as it is sent, never
// held by the test) gets its 401 after at most a flow-control window's worth
// of bytes, so the server never holds the body. Each example runs as a real
// process, as `npx tsx examples/NAME.ts` runs it.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { killAll, startServe, type Serve } from "../support/cli-harness.js";
import { echoPath } from "../support/harness.js";
import { printedPort, startExample, type ExampleProcess } from "../support/example-process.js";
import { h2Call, streamLargeBody, type LargeBodyResult } from "../support/raw-requests.js";

// HTTP/2: the server never grants more than its flow-control window (64 KiB
// per stream) to a body it does not read; 1 MiB leaves room for buffers.
const h2Bound = 1024 * 1024;
// HTTP/1.1 has no flow control: the client may hand megabytes to its socket
// before the answer reaches it (the server answers 401 with Connection: close
// and closes without reading the rest; test/connect/http1-refused-upload.test.ts
// counts what it reads). A server that buffers answers only after all 64 MiB.
const h1Bound = 16 * 1024 * 1024;

function expectRefusedEarly(result: LargeBodyResult, bound = h2Bound): void {
  if (process.env.CERTGATE_TEST_VERBOSE) console.log(`401 after ${result.sentAtResponse} of ${result.total} bytes`);
  expect(result.status).toBe(401);
  expect(result.body).toContain("unauthenticated");
  expect(result.sentAtResponse).toBeLessThan(bound);
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "certgate-examples-"));
});
afterAll(async () => {
  killAll();
  await rm(tmp, { recursive: true, force: true });
});

const alice = async () => {
  const dir = join(tmp, ".certgate", "demo");
  return {
    cert: await readFile(join(dir, "alice.pem"), "utf8"),
    key: await readFile(join(dir, "alice-key.pem"), "utf8"),
  };
};

describe.each(["server", "demo", "directory-store-server"])("examples/%s.ts", (name) => {
  let example: ExampleProcess;
  let url: string;
  beforeAll(async () => {
    example = await startExample(name, { cwd: tmp, env: { PORT: "0" } });
    url = `https://localhost:${printedPort(example.output().stdout)}`;
  });
  afterAll(async () => {
    await example?.stop();
  });

  it("refuses 64 MiB without a certificate with 401 before reading the body", async () => {
    expectRefusedEarly(await streamLargeBody(url, { path: echoPath }));
    expectRefusedEarly(await streamLargeBody(url, { path: echoPath, http1: true }), h1Bound);
    expect(example.running()).toBe(true);
  });

  it("admits alice's call, and bounds her body with readMaxBytes", async () => {
    const port = Number(new URL(url).port);
    const ok = await h2Call(port, {
      authority: `localhost:${port}`,
      path: echoPath,
      body: '{"text":"hi"}',
      ...(await alice()),
    });
    expect(ok).toMatchObject({ status: 200, body: expect.stringContaining("hi") });
    const big = await streamLargeBody(url, { path: echoPath, total: 4 * 1024 * 1024, ...(await alice()) });
    expect(big.body).toContain("resource_exhausted");
  });
});

describe("examples/store-api-server.ts", () => {
  let serve: Serve;
  let example: ExampleProcess;
  let url: string;
  beforeAll(async () => {
    const dataDir = join(tmp, "store");
    serve = await startServe(["--data-dir", dataDir]);
    example = await startExample("store-api-server", {
      cwd: tmp,
      env: { PORT: "0", CERTGATE_STORE: serve.url, CERTGATE_DEV_DIR: join(dataDir, "dev") },
      ready: /API server on/,
    });
    url = `https://localhost:${printedPort(example.output().stdout)}`;
  });
  afterAll(async () => {
    await example?.stop();
    await serve?.stop();
  });

  it("refuses 64 MiB without a certificate with 401 before reading the body", async () => {
    expectRefusedEarly(await streamLargeBody(url, { path: echoPath }));
    expectRefusedEarly(await streamLargeBody(url, { path: echoPath, http1: true }), h1Bound);
    expect(example.running()).toBe(true);
  });
});

describe("examples/behind-proxy-server.ts", () => {
  let example: ExampleProcess;
  let h2c: number;
  let h1: number;
  beforeAll(async () => {
    example = await startExample("behind-proxy-server", { cwd: tmp, env: { PORT: "0" } });
    const { stdout } = example.output();
    h2c = printedPort(stdout, "h2c");
    h1 = printedPort(stdout, "http");
  });
  afterAll(async () => {
    await example?.stop();
  });

  it("refuses 64 MiB without a forwarded certificate with 401 before reading the body, on h2c and HTTP/1.1", async () => {
    expectRefusedEarly(await streamLargeBody(`http://127.0.0.1:${h2c}`, { path: echoPath }));
    expectRefusedEarly(await streamLargeBody(`http://127.0.0.1:${h1}`, { path: echoPath, http1: true }), h1Bound);
    expect(example.running()).toBe(true);
  });

  it("admits alice's certificate forwarded by the proxy on 127.0.0.1", async () => {
    const xfcc = `Cert="${encodeURIComponent((await alice()).cert)}"`;
    const ok = await h2Call(h2c, {
      plaintext: true,
      authority: `127.0.0.1:${h2c}`,
      path: echoPath,
      body: '{"text":"hi"}',
      headers: { "x-forwarded-client-cert": xfcc },
    });
    expect(ok).toMatchObject({ status: 200, body: expect.stringContaining("hi") });
  });
});

describe("examples/grpc-js-server.ts", () => {
  let example: ExampleProcess;
  let port: number;
  beforeAll(async () => {
    example = await startExample("grpc-js-server", { cwd: tmp, env: { PORT: "0" } });
    port = Number(/localhost:(\d+)/.exec(example.output().stdout)?.[1]);
  });
  afterAll(async () => {
    await example?.stop();
  });

  it("refuses a 64 MiB gRPC message without a certificate with grpc-status 16 before reading it", async () => {
    const total = 64 * 1024 * 1024;
    // One gRPC frame announcing the whole body as one message.
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(total - 5, 1);
    const result = await streamLargeBody(`https://localhost:${port}`, {
      path: echoPath,
      total,
      prefix,
      headers: { "content-type": "application/grpc", te: "trailers" },
    });
    if (process.env.CERTGATE_TEST_VERBOSE)
      console.log(`grpc-status ${result.grpcStatus} after ${result.sentAtResponse} bytes`);
    expect(result.grpcStatus).toBe("16");
    expect(result.sentAtResponse).toBeLessThan(h2Bound);
    expect(example.running()).toBe(true);
  });
});
