import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import * as grpc from "@grpc/grpc-js";
import { beforeAll } from "vitest";
import {
  createClientCertServerInterceptor,
  createServerCredentials,
  createThumbprintStore,
} from "../../src/grpc-js/index.js";
import { streamOf } from "../../src/grpc-js/call-stream.js";
import { captureWarnings, createTestPki, waitFor, type TestPki } from "../support/harness.js";

let pki: TestPki;
beforeAll(async () => {
  pki = await createTestPki();
});

const method = {
  path: "/certgate.example.v1.EchoService/Echo",
  requestStream: false,
  responseStream: false,
  requestDeserialize: (b: Buffer) => b,
  responseSerialize: (v: unknown) => v as Buffer,
} as unknown as grpc.ServerMethodDefinition<unknown, unknown>;

// A call below the interceptor that does not lead to an HTTP/2 stream, as a
// grpc-js release that renamed its fields would give.
function foreignCall() {
  const sent: { code: number; details: string }[] = [];
  const call = {
    start(listener: { onReceiveMetadata(m: grpc.Metadata): void }) {
      listener.onReceiveMetadata(new grpc.Metadata());
    },
    sendStatus(status: { code: number; details: string }) {
      sent.push(status);
    },
    startRead() {
      throw new Error("a refused call must not read");
    },
  };
  return { call: call as unknown as grpc.ServerInterceptingCallInterface, sent };
}

describe("createClientCertServerInterceptor() guards", () => {
  it("refuses a call whose HTTP/2 stream it cannot reach, and never starts the handler", async () => {
    const warnings = captureWarnings();
    const interceptor = createClientCertServerInterceptor({ store: createThumbprintStore("00".repeat(32)) });
    const { call, sent } = foreignCall();
    const started: unknown[] = [];
    interceptor(method, call).start({
      onReceiveMetadata: (m) => started.push(m),
      onReceiveMessage: () => started.push("message"),
      onReceiveHalfClose: () => started.push("half-close"),
      onCancel: () => {},
    });
    expect(started).toEqual([]);
    expect(sent).toEqual([expect.objectContaining({ code: 16, details: "client certificate could not be read" })]);
    // Process warnings are emitted on a later tick.
    await waitFor(() => warnings.warnings.some((w) => w.code === "CERTGATE_GRPC_JS_STREAM"), "the warning");
    warnings.stop();
  });

  it("finds the stream through other interceptors' calls", () => {
    const stream = { session: undefined, respond() {}, pushStream() {} };
    const base = { stream } as unknown as grpc.ServerInterceptingCallInterface;
    expect(streamOf(new grpc.ServerInterceptingCall(new grpc.ServerInterceptingCall(base)))).toBe(stream);
    expect(streamOf({} as grpc.ServerInterceptingCallInterface)).toBeUndefined();
  });
});

describe("createServerCredentials()", () => {
  it("asks for client certificates and refuses none in the handshake", () => {
    const credentials = createServerCredentials({
      cert: pki.server.cert,
      key: pki.server.key,
      ca: pki.ca.cert,
    }) as unknown as {
      _getConstructorOptions(): object;
      _getSecureContextOptions(): object;
    };
    expect(credentials._getConstructorOptions()).toEqual({ requestCert: true, rejectUnauthorized: false });
    expect(credentials._getSecureContextOptions()).toEqual({
      cert: pki.server.cert,
      key: pki.server.key,
      ca: pki.ca.cert,
    });
  });

  it("trusts no CA without ca, not Node's default roots: the TLS layer is given an empty list", () => {
    const credentials = createServerCredentials({ cert: pki.server.cert, key: pki.server.key }) as unknown as {
      _getSecureContextOptions(): object;
    };
    expect(credentials._getSecureContextOptions()).toEqual({ cert: pki.server.cert, key: pki.server.key, ca: [] });
  });

  it("fails at start-up on a ca that holds no PEM certificate, which Node would skip silently", () => {
    const make = (ca: unknown) => () =>
      createServerCredentials({ cert: pki.server.cert, key: pki.server.key, ca: ca as string });
    expect(make("garbage")).toThrow(/options\.ca must be PEM CA certificates/);
    expect(make([pki.ca.cert, "garbage"])).toThrow(/options\.ca\[1\] must be PEM CA certificates/);
    expect(make(pki.alice.key)).toThrow(/options\.ca must be PEM CA certificates.*private key/);
    const der = Buffer.from(pki.ca.cert.replace(/-----[^-]+-----|\s/g, ""), "base64");
    expect(make(der)).toThrow(/options\.ca is DER/);
    expect(make([pki.ca.cert, Buffer.from(pki.alice.cert)])).not.toThrow();
    // Node's own roots, when wanted, are asked for by name.
    expect(make(tls.rootCertificates)).not.toThrow();
  });

  it("fails at start-up, naming the problem, on missing or mismatched material", () => {
    expect(() => createServerCredentials(undefined as never)).toThrow(/needs options/);
    expect(() => createServerCredentials({ cert: pki.server.cert } as never)).toThrow(/options\.key must be PEM/);
    expect(() => createServerCredentials({ cert: pki.server.cert, key: pki.server.key, ca: 42 } as never)).toThrow(
      /options\.ca/,
    );
    expect(() => createServerCredentials({ cert: pki.server.cert, key: pki.alice.key })).toThrow(
      /createServerCredentials\(\).*key/i,
    );
  });
});

describe("createServerCredentials() without ca, under NODE_EXTRA_CA_CERTS", () => {
  // NODE_EXTRA_CA_CERTS is read when Node starts: the server runs in a
  // process of its own, whose extra CA is the one that issued alice.
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
  async function trustCheck(serverCa: string | undefined): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), "certgate-extra-ca-"));
    try {
      await writeFile(join(dir, "ca.pem"), pki.ca.cert);
      const { stdout } = await promisify(execFile)(
        process.execPath,
        ["--import", tsx, join("test", "support", "grpc-js-trust-check.ts")],
        {
          env: {
            ...process.env,
            NODE_EXTRA_CA_CERTS: join(dir, "ca.pem"),
            CERTGATE_TEST_CA: pki.ca.cert,
            CERTGATE_TEST_SERVER_CERT: pki.server.cert,
            CERTGATE_TEST_SERVER_KEY: pki.server.key,
            CERTGATE_TEST_CLIENT_CERT: pki.alice.cert,
            CERTGATE_TEST_CLIENT_KEY: pki.alice.key,
            ...(serverCa === undefined ? {} : { CERTGATE_TEST_SERVER_CA: serverCa }),
          },
        },
      );
      return stdout.trim();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  it("refuses with validateTrust: tls a chain only NODE_EXTRA_CA_CERTS would trust", async () => {
    expect(await trustCheck(undefined)).toBe("untrusted");
  }, 30_000);

  it("admits the same chain once the server is given its CA as ca", async () => {
    expect(await trustCheck(pki.ca.cert)).toBe("admitted");
  }, 30_000);
});
