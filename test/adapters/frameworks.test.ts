// certgate on Express and Fastify, installed next to Connect 2.2.0 from the
// packed tarball (see .ci/adapters.sh): real HTTPS servers on 127.0.0.1, the
// Connect client of connect-node over HTTP/1.1 (and HTTP/2 for Fastify), curl.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  ClientCertificateErrorSchema,
  createClientCertGate,
  createClientCertInterceptor,
  createMemoryStore,
  createPeerCertificateContextValues,
  parseCertificate,
  peerCertificateContextValues,
  type DecisionEvent,
} from "certgate";
import { createDevCa, issueDevCertificate, type IssuedCertificate } from "certgate/dev";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  curl,
  echoClient,
  http1Upload,
  http2Upload,
  malformedHttp1,
  malformedHttp2,
  startServer,
  statusBeforeBody,
  variants,
  type Running,
} from "./support.js";

interface Pki {
  ca: IssuedCertificate;
  server: IssuedCertificate;
  alice: IssuedCertificate;
  bob: IssuedCertificate;
  mallory: IssuedCertificate;
  proxy: IssuedCertificate;
  dir: string;
  /** PEM file paths for curl. */
  files(name: "alice" | "bob" | "mallory" | "proxy" | "none"): { ca: string; cert?: string; key?: string };
}

let pki: Pki;

beforeAll(async () => {
  const ca = await createDevCa();
  const issue = (commonName: string) => issueDevCertificate(ca, { commonName, usages: ["client"] });
  const server = await issueDevCertificate(ca, {
    commonName: "localhost",
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1"],
    usages: ["server"],
  });
  const [alice, bob, mallory, proxy] = await Promise.all([
    issue("alice"),
    issue("bob"),
    issue("mallory"),
    issue("proxy"),
  ]);
  const dir = mkdtempSync(join(tmpdir(), "certgate-adapters-"));
  writeFileSync(join(dir, "ca.pem"), ca.cert);
  for (const [name, c] of Object.entries({ alice, bob, mallory, proxy })) {
    writeFileSync(join(dir, `${name}.pem`), c.cert);
    writeFileSync(join(dir, `${name}-key.pem`), c.key, { mode: 0o600 });
  }
  pki = {
    ca,
    server,
    alice,
    bob,
    mallory,
    proxy,
    dir,
    files(name) {
      const caFile = join(dir, "ca.pem");
      return name === "none"
        ? { ca: caFile }
        : { ca: caFile, cert: join(dir, `${name}.pem`), key: join(dir, `${name}-key.pem`) };
    },
  };
});

afterAll(() => {
  if (pki !== undefined) rmSync(pki.dir, { recursive: true, force: true });
});

function refusal(error: unknown) {
  expect(error).toBeInstanceOf(ConnectError);
  const e = error as ConnectError;
  return { code: e.code, message: e.rawMessage, details: e.findDetails(ClientCertificateErrorSchema) };
}

async function refused(call: Promise<unknown>) {
  return refusal(
    await call.then(
      () => undefined,
      (e: unknown) => e,
    ),
  );
}

const modes = ["gate", "interceptor"] as const;
const cases = variants.flatMap((variant) => modes.map((mode) => ({ variant, mode, name: `${variant.name}, ${mode}` })));

describe.each(cases)("peerCertificateContextValues with the $name", ({ variant, mode }) => {
  let running: Running;
  const events: DecisionEvent[] = [];
  const store = createMemoryStore();

  beforeAll(async () => {
    await store.put("alice", pki.alice.der);
    const options = { store, onDecision: (e: DecisionEvent) => void events.push(e) };
    running = await startServer(variant, pki.server, {
      ...(mode === "gate"
        ? { requestGate: createClientCertGate(options) }
        : { interceptors: [createClientCertInterceptor(options)] }),
      contextValues: peerCertificateContextValues,
    });
  });
  afterAll(async () => {
    await running?.close();
    await store.close();
  });

  it("admits the pinned certificate, read once for the calls of one connection", async () => {
    const before = running.connections();
    const { client, close } = echoClient(running, variant.http, pki.ca.cert, pki.alice);
    try {
      expect((await client.echo({ text: "hi" })).text).toBe("hi, CN=alice");
      expect((await client.echo({ text: "again" })).text).toBe("again, CN=alice");
    } finally {
      close();
    }
    expect(running.connections() - before).toBe(1);
    const [first, second] = running.seen.peers.slice(-2);
    expect(first?.certificate?.subject).toBe("CN=alice");
    expect(second).toBe(first);
    expect(events.at(-1)).toMatchObject({ kind: "admitted", via: mode });
  });

  it("refuses another certificate with Unauthenticated and the error detail, before the handler", async () => {
    const calls = running.seen.peers.length;
    const { client, close } = echoClient(running, variant.http, pki.ca.cert, pki.mallory);
    try {
      expect(await refused(client.echo({ text: "hi" }))).toEqual({
        code: Code.Unauthenticated,
        message: "client certificate not allowed",
        details: [
          expect.objectContaining({ reason: "not_allowed", procedure: "/certgate.example.v1.EchoService/Echo" }),
        ],
      });
    } finally {
      close();
    }
    expect(running.seen.peers.length).toBe(calls);
    expect(events.at(-1)).toMatchObject({ kind: "refused", reason: "not_allowed", via: mode });
  });

  it("answers curl with 200 for the pinned certificate and 401 with the detail for others", async () => {
    const admitted = await curl(running, variant.http, pki.files("alice"));
    expect(admitted).toEqual({ status: 200, body: '{"text":"hello, CN=alice"}' });

    const other = await curl(running, variant.http, pki.files("mallory"));
    expect(other.status).toBe(401);
    const body = JSON.parse(other.body) as { code: string; message: string; details?: { type: string }[] };
    expect(body).toMatchObject({ code: "unauthenticated", message: "client certificate not allowed" });
    expect(body.details?.map((d) => d.type)).toEqual(["certgate.v1.ClientCertificateError"]);

    const none = await curl(running, variant.http, pki.files("none"));
    expect(none.status).toBe(401);
    expect(JSON.parse(none.body)).toMatchObject({
      code: "unauthenticated",
      message: "no client certificate presented",
    });
  });

  it("sees a deletion on the next call of an open keep-alive connection", async () => {
    await store.put("bob", pki.bob.der);
    const before = running.connections();
    const { client, close } = echoClient(running, variant.http, pki.ca.cert, pki.bob);
    try {
      expect((await client.echo({ text: "hi" })).text).toBe("hi, CN=bob");
      await store.delete("bob");
      expect(await refused(client.echo({ text: "hi" }))).toMatchObject({
        code: Code.Unauthenticated,
        details: [expect.objectContaining({ reason: "not_allowed" })],
      });
    } finally {
      close();
    }
    // Both calls went over the one connection the first call opened.
    expect(running.connections() - before).toBe(1);
  });

  // The interceptor runs once a unary call's body is read: only the gate can.
  if (mode === "gate") {
    it("refuses before reading the body", async () => {
      expect(await statusBeforeBody(running, pki.ca.cert, pki.mallory)).toBe("HTTP/1.1 401 Unauthorized");
      expect(await statusBeforeBody(running, pki.ca.cert, undefined)).toBe("HTTP/1.1 401 Unauthorized");
    });

    it("refuses an HTTP/1.1 upload with Connection: close, and closes the connection without reading the body", async () => {
      for (const who of [pki.mallory, undefined]) {
        const result = await http1Upload(running, pki.ca.cert, who, 64 * 1024 * 1024);
        expect(result).toMatchObject({ status: 401, connection: "close", closedByServer: true });
        // The request head and what the socket and request stream buffer:
        // tens of KiB. Reading the body would be 64 MiB (or what the client
        // got to send before the server closed).
        const read = await vi.waitFor(() => {
          const n = running.bytesReadOf(result.port);
          if (n === undefined) throw new Error("the server has not closed the connection");
          return n;
        });
        expect(read).toBeLessThan(128 * 1024);
      }
    });

    if (variant.http === "2") {
      it("resets a refused HTTP/2 upload's stream after the response, having read a flow-control window of it", async () => {
        for (const who of [pki.mallory, undefined]) {
          const result = await http2Upload(running, pki.ca.cert, who, 64 * 1024 * 1024);
          expect(result).toMatchObject({ status: 401, rstCode: 0, ended: false });
          expect(result.sent).toBeLessThan(1024 * 1024);
        }
      });
    }

    it("keeps an admitted HTTP/1.1 connection open", async () => {
      const before = running.connections();
      const { client, close } = echoClient(running, "1.1", pki.ca.cert, pki.alice);
      try {
        for (let i = 0; i < 3; i++) expect((await client.echo({ text: `n${i}` })).text).toBe(`n${i}, CN=alice`);
      } finally {
        close();
      }
      expect(running.connections() - before).toBe(1);
    });
  }

  // connect-node's request conversion throws on these; unguarded, Express
  // answers 500 with a stack trace and connect-fastify an empty 200, logging
  // the stack trace each time.
  const malformed = [
    { name: "an unbracketed IPv6 Host", send: () => malformedHttp1(running.port, `::1:${running.port}`) },
    { name: "HTTP/1.0 without Host", send: () => malformedHttp1(running.port, undefined) },
    ...(variant.http === "2"
      ? [{ name: "an unbracketed IPv6 :authority", send: () => malformedHttp2(running.port, `::1:${running.port}`) }]
      : []),
  ];
  it.each(malformed)("answers $name with 400, logs nothing, and serves the next call", async ({ send }) => {
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      expect(await send()).toEqual({ status: 400, body: "malformed request\n" });
      expect(logged).not.toHaveBeenCalled();
    } finally {
      logged.mockRestore();
    }
    expect(await curl(running, variant.http, pki.files("alice"))).toEqual({
      status: 200,
      body: '{"text":"hello, CN=alice"}',
    });
  });
});

describe.each(variants)("createPeerCertificateContextValues on the $name, behind a trusted proxy", (variant) => {
  let running: Running;
  const events: DecisionEvent[] = [];
  const header = "x-forwarded-client-cert";
  const forward = (c: IssuedCertificate) =>
    `${header}: Hash=${parseCertificate(c.cert).sha256};Cert="${encodeURIComponent(c.cert)}"`;

  beforeAll(async () => {
    const store = createMemoryStore();
    await store.put("alice", pki.alice.der);
    running = await startServer(variant, pki.server, {
      requestGate: createClientCertGate({ store, onDecision: (e) => void events.push(e) }),
      contextValues: createPeerCertificateContextValues({
        // The proxy authenticates to the server with its own certificate.
        trustedProxies: { thumbprints: [parseCertificate(pki.proxy.cert).sha256] },
        formats: ["xfcc"],
      }),
    });
  });
  afterAll(async () => {
    await running?.close();
  });

  it("admits the pinned certificate the proxy forwards", async () => {
    const result = await curl(running, variant.http, pki.files("proxy"), [forward(pki.alice)]);
    expect(result).toEqual({ status: 200, body: '{"text":"hello, CN=alice"}' });
    expect(events.at(-1)).toMatchObject({ kind: "admitted", source: "proxy" });
  });

  it("refuses another certificate the proxy forwards, and the proxy's own without a header", async () => {
    const other = await curl(running, variant.http, pki.files("proxy"), [forward(pki.mallory)]);
    expect(other.status).toBe(401);
    expect(other.body).toContain("client certificate not allowed");
    const bare = await curl(running, variant.http, pki.files("proxy"));
    expect(bare.status).toBe(401);
    expect(bare.body).toContain("no client certificate presented");
  });

  // Node joins a header sent twice with ", ", which reads as two XFCC
  // elements: only Node's raw header list (Fastify: request.raw) tells.
  it("refuses the header sent twice, read from Node's raw header list", async () => {
    const result = await curl(running, variant.http, pki.files("proxy"), [forward(pki.alice), forward(pki.alice)]);
    expect(result.status).toBe(401);
    expect(result.body).toContain("client certificate could not be read");
    expect(events.at(-1)).toMatchObject({ kind: "refused", reason: "invalid_certificate", source: "proxy" });
  });

  it("ignores the header from a client that is not the proxy", async () => {
    const forged = await curl(running, variant.http, pki.files("mallory"), [forward(pki.alice)]);
    expect(forged.status).toBe(401);
    expect(forged.body).toContain("client certificate not allowed");
    expect(events.at(-1)).toMatchObject({ kind: "refused", source: "tls", ignoredForwardingHeaders: [header] });
    const direct = await curl(running, variant.http, pki.files("alice"), [forward(pki.mallory)]);
    expect(direct).toEqual({ status: 200, body: '{"text":"hello, CN=alice"}' });
  });
});

describe("gRPC over HTTP/2 on Fastify", () => {
  it("admits the pinned certificate and refuses another with Unauthenticated", async () => {
    const variant = variants.find((v) => v.framework === "fastify" && v.http === "2");
    if (variant === undefined) throw new Error("no fastify HTTP/2 variant");
    const store = createMemoryStore();
    await store.put("alice", pki.alice.der);
    const running = await startServer(variant, pki.server, {
      requestGate: createClientCertGate({ store }),
      contextValues: peerCertificateContextValues,
    });
    const alice = echoClient(running, "2", pki.ca.cert, pki.alice, "grpc");
    const mallory = echoClient(running, "2", pki.ca.cert, pki.mallory, "grpc");
    try {
      expect((await alice.client.echo({ text: "hi" })).text).toBe("hi, CN=alice");
      expect(await refused(mallory.client.echo({ text: "hi" }))).toMatchObject({
        code: Code.Unauthenticated,
        details: [expect.objectContaining({ reason: "not_allowed" })],
      });
    } finally {
      alice.close();
      mallory.close();
      await running.close();
    }
  });
});

describe("certgate without @connectrpc/connect-node", () => {
  const script = fileURLToPath(new URL("./without-connect-node.mjs", import.meta.url));
  const run = (...args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [script, ...args], (error, stdout, stderr) =>
        resolve({ code: error === null ? 0 : Number(error.code ?? 1), stdout, stderr }),
      );
    });

  it("loads the main entry point, builds the gate and the interceptor, and names the package where it is needed", async () => {
    const result = await run();
    expect(result.stderr).toBe("");
    expect(result.stdout.trim().split("\n")).toEqual([
      "connect-node hidden: ERR_MODULE_NOT_FOUND",
      "certgate loaded: gate, interceptor, context values",
      "store server: certgate: the certificate store server needs @connectrpc/connect-node; install it (npm install @connectrpc/connect-node)",
    ]);
    expect(result.code).toBe(0);
  });
});

describe("certgate without @opentelemetry/api", () => {
  it("admits and refuses through the gate and the interceptor with the package absent", async () => {
    const script = fileURLToPath(new URL("./without-opentelemetry.mjs", import.meta.url));
    const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [script], (error, stdout, stderr) =>
        resolve({ code: error === null ? 0 : Number(error.code ?? 1), stdout, stderr }),
      );
    });
    expect(result.stderr).toBe("");
    expect(result.stdout.trim().split("\n")).toEqual([
      "opentelemetry hidden: ERR_MODULE_NOT_FOUND, MODULE_NOT_FOUND",
      "alice: hi, hi",
      "bob: client certificate not allowed",
      "closed",
    ]);
    expect(result.code).toBe(0);
  });
});

describe("examples", () => {
  // Each example is a process of its own, started with tsx as a user would
  // (without vitest's NODE_ENV=test, under which Express logs no errors): both at once.
  it.concurrent.for(["express", "fastify"])(
    "examples/%s-server.ts runs, admits alice's certificate, refuses bob's and answers malformed requests with 400, logging nothing",
    async (framework, { onTestFinished }) => {
      // The example creates its demo certificates under the working directory.
      const cwd = mkdtempSync(join(tmpdir(), `certgate-${framework}-example-`));
      const port = await freePort();
      const script = fileURLToPath(new URL(`./examples/${framework}-server.ts`, import.meta.url));
      const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port) };
      delete env.NODE_ENV;
      const child = spawn(process.execPath, ["--import", import.meta.resolve("tsx"), script], {
        cwd,
        env,
        stdio: ["ignore", "pipe", "pipe"],
      });
      const output = { stdout: "", stderr: "" };
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => (output.stdout += chunk));
      child.stderr.setEncoding("utf8").on("data", (chunk: string) => (output.stderr += chunk));
      const closed = once(child, "close");
      const stop = async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill();
        await closed;
      };
      onTestFinished(async () => {
        await stop();
        rmSync(cwd, { recursive: true, force: true });
      });
      await waitForListening(child, output);
      expect(output.stdout).toMatch(/^listening on https:\/\/localhost:\d+, pinned to [0-9A-F]{40}\n$/);
      const demo = join(cwd, ".certgate", "demo");
      const files = (name: string) => ({
        ca: join(demo, "ca.pem"),
        cert: join(demo, `${name}.pem`),
        key: join(demo, `${name}-key.pem`),
      });
      const running = { url: `https://127.0.0.1:${port}` };
      const http = framework === "fastify" ? "2" : "1.1";
      const alice = { status: 200, body: '{"text":"hello, CN=alice"}' };
      expect(await curl(running, http, files("alice"))).toEqual(alice);
      const bob = await curl(running, http, files("bob"));
      expect(bob.status).toBe(401);
      expect(JSON.parse(bob.body)).toMatchObject({
        code: "unauthenticated",
        message: "client certificate not allowed",
      });

      const answered = { status: 400, body: "malformed request\n" };
      expect(await malformedHttp1(port, `::1:${port}`)).toEqual(answered);
      expect(await curl(running, http, files("alice"))).toEqual(alice);
      expect(await malformedHttp1(port, undefined)).toEqual(answered);
      expect(await curl(running, http, files("alice"))).toEqual(alice);
      if (framework === "fastify") {
        expect(await malformedHttp2(port, `::1:${port}`)).toEqual(answered);
        expect(await curl(running, http, files("alice"))).toEqual(alice);
      }
      // All of the process's output, once it has exited: nothing but the first line.
      expect(child.exitCode).toBeNull();
      await stop();
      expect(output.stderr).toBe("");
      expect(output.stdout.split("\n")).toHaveLength(2);
    },
  );
});

// Resolves once the child printed its first line; rejects, with what it
// printed, when it exits before.
function waitForListening(child: ChildProcess, output: { stdout: string; stderr: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    const onData = () => {
      if (output.stdout.includes("\n")) {
        child.stdout?.off("data", onData);
        child.off("exit", onExit);
        resolve();
      }
    };
    const onExit = (code: number | null) =>
      reject(new Error(`the example exited (${code}) before listening:\n${output.stdout}${output.stderr}`));
    child.stdout?.on("data", onData);
    child.once("exit", onExit);
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
