import * as http2 from "node:http2";
import * as https from "node:https";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { createTlsFiles, watchServerTls } from "../../src/index.js";
import { createDevCa, issueDevCertificate, type IssuedCertificate } from "../../src/dev-certificates.js";
import { waitFor } from "../support/harness.js";
import { createTestMetrics } from "../support/metrics.js";
import { atomicWrite, eventLog, presentedCertificate, renameOver, serialOf } from "../support/tls-rotation.js";

let tmp: string;
let ca: IssuedCertificate;
let otherCa: IssuedCertificate;
let serverA: IssuedCertificate;
let serverB: IssuedCertificate;
const closers: (() => unknown)[] = [];

const serverCert = (issuer: IssuedCertificate, name: string) =>
  issueDevCertificate(issuer, {
    commonName: name,
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1"],
    usages: ["server"],
  });

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "certgate-tls-files-"));
  ca = await createDevCa({ commonName: "tls files CA" });
  otherCa = await createDevCa({ commonName: "tls files other CA" });
  serverA = await serverCert(ca, "server A");
  serverB = await serverCert(ca, "server B");
});
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

let n = 0;
function folder(): string {
  return join(tmp, `case-${++n}`);
}

function follow(dir: string, extra: { ca?: boolean; settleMs?: number } = {}) {
  const log = eventLog();
  const files = createTlsFiles({
    cert: join(dir, "tls.crt"),
    key: join(dir, "tls.key"),
    ...(extra.ca === true ? { ca: join(dir, "ca.crt") } : {}),
    debounceMs: 20,
    settleMs: extra.settleMs ?? 300,
    onEvent: log.onEvent,
  });
  closers.push(() => files.close());
  return { files, log };
}

function listen(server: http2.Http2SecureServer | https.Server): Promise<number> {
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        if ("closeAllConnections" in server) server.closeAllConnections();
      }),
  );
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)));
}

describe("createTlsFiles()", () => {
  it("rotates an HTTP/2 server's certificate under a streaming connection, which keeps working; a new connection gets the new one", async () => {
    const dir = folder();
    await atomicWrite(dir, { "tls.crt": serverA.cert, "tls.key": serverA.key });
    const { files, log } = follow(dir);
    const sessions = new Set<http2.ServerHttp2Session>();
    const server = http2.createSecureServer({ ...files.secureContextOptions() });
    server.on("session", (s) => {
      sessions.add(s);
      s.on("close", () => sessions.delete(s));
    });
    closers.push(() => {
      for (const s of sessions) s.destroy();
    });
    // An echo stream: each chunk the client sends comes back.
    server.on("stream", (stream) => {
      stream.respond({ ":status": 200 });
      stream.on("data", (chunk: Buffer) => stream.write(chunk));
      stream.on("end", () => stream.end());
    });
    watchServerTls(server, files);
    const port = await listen(server);

    const client = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
    closers.push(() => client.destroy());
    const stream = client.request({ ":method": "POST", ":path": "/stream" });
    const echoes: string[] = [];
    stream.on("data", (chunk: Buffer) => echoes.push(chunk.toString()));
    const echoOf = async (text: string) => {
      stream.write(text);
      await waitFor(() => echoes.includes(text), `the echo of ${text}`);
    };
    await echoOf("before");
    expect((await presentedCertificate(port)).serialNumber).toBe(serialOf(serverA));

    const reloaded = log.next("reloaded");
    await atomicWrite(dir, { "tls.crt": serverB.cert, "tls.key": serverB.key });
    const event = await reloaded;
    expect(event.kind === "reloaded" && event.certificate.serialNumber).toBe(serialOf(serverB));
    expect(files.certificate.serialNumber).toBe(serialOf(serverB));

    const fresh = await presentedCertificate(port);
    expect(fresh.serialNumber).toBe(serialOf(serverB));
    // The open connection and its stream were not touched.
    await echoOf("after");
    expect(client.closed || client.destroyed).toBe(false);
    const socket = client.socket as unknown as { getPeerCertificate(): { serialNumber: string } };
    expect(socket.getPeerCertificate().serialNumber).toBe(serialOf(serverA));
    stream.end();
  });

  it("rotates the client CA: on new connections a client of the new CA is admitted and one of the old CA refused", async () => {
    const dir = folder();
    await mkdir(dir);
    await writeFile(join(dir, "tls.crt"), serverA.cert);
    await writeFile(join(dir, "tls.key"), serverA.key);
    await writeFile(join(dir, "ca.crt"), ca.cert);
    const { files, log } = follow(dir, { ca: true });
    const server = https.createServer(
      { ...files.secureContextOptions(), requestCert: true, rejectUnauthorized: true },
      (_req, res) => res.end("ok"),
    );
    watchServerTls(server, files);
    const port = await listen(server);
    const oldClient = await issueDevCertificate(ca, { commonName: "old client", usages: ["client"] });
    const newClient = await issueDevCertificate(otherCa, { commonName: "new client", usages: ["client"] });

    expect(await handshake(port, oldClient)).toBe("admitted");
    expect(await handshake(port, newClient)).toBe("refused");

    const reloaded = log.next("reloaded");
    // An editor's save: a new file renamed over the old one.
    await renameOver(join(dir, "ca.crt"), otherCa.cert);
    await reloaded;

    expect(await handshake(port, newClient)).toBe("admitted");
    expect(await handshake(port, oldClient)).toBe("refused");
  });

  it("does not load a half-written key, and loads the set once the key is whole", async () => {
    const dir = folder();
    await atomicWrite(dir, { "tls.crt": serverA.cert, "tls.key": serverA.key });
    const { files, log } = follow(dir);
    const changes: string[] = [];
    files.onChange((o) => changes.push(o.cert));

    // A plain write in place, stopped half-way through the key.
    const refused = log.next("refused");
    await renameOver(join(dir, "..data", "tls.crt"), serverB.cert);
    await writeFile(join(dir, "..data", "tls.key"), serverB.key.slice(0, serverB.key.length / 2));
    const event = await refused;
    expect(event.kind === "refused" && event.problem).toBe("incomplete");
    expect(changes).toEqual([]);
    expect(files.certificate.serialNumber).toBe(serialOf(serverA));
    expect(files.secureContextOptions().key).toBe(serverA.key);

    const reloaded = log.next("reloaded");
    await writeFile(join(dir, "..data", "tls.key"), serverB.key);
    await reloaded;
    expect(changes).toEqual([serverB.cert]);
    expect(files.secureContextOptions().key).toBe(serverB.key);
  });

  it("refuses a key that does not match, with a log line, and keeps the old set", async () => {
    const dir = folder();
    await atomicWrite(dir, { "tls.crt": serverA.cert, "tls.key": serverA.key });
    const lines: string[] = [];
    const spy = vi.spyOn(console, "error").mockImplementation((line: string) => void lines.push(line));
    closers.push(() => spy.mockRestore());
    const files = createTlsFiles({
      cert: join(dir, "tls.crt"),
      key: join(dir, "tls.key"),
      debounceMs: 20,
      settleMs: 200,
    });
    closers.push(() => files.close());
    const server = https.createServer({ ...files.secureContextOptions() }, (_req, res) => res.end("ok"));
    watchServerTls(server, files);
    const port = await listen(server);

    // The new certificate with the old key: whole files that are not a set.
    await atomicWrite(dir, { "tls.crt": serverB.cert, "tls.key": serverA.key });
    await waitFor(() => lines.some((l) => l.includes("refused")), "the refusal");
    expect(lines).toEqual([
      expect.stringMatching(
        /^certgate: kept the TLS certificate in use \(serial [0-9A-F]+\); refused the files: the key in .*tls\.key does not belong to the certificate in .*tls\.crt$/,
      ),
    ]);
    expect(files.certificate.serialNumber).toBe(serialOf(serverA));
    expect((await presentedCertificate(port)).serialNumber).toBe(serialOf(serverA));
    // reload() (SIGHUP) says so at once.
    expect(await files.reload()).toMatchObject({ kind: "refused", problem: "mismatch" });
  });

  it("reload() reads the files now and reports the new certificate, then nothing new", async () => {
    const dir = folder();
    await atomicWrite(dir, { "tls.crt": serverA.cert, "tls.key": serverA.key });
    const files = createTlsFiles({
      cert: join(dir, "tls.crt"),
      key: join(dir, "tls.key"),
      debounceMs: 60_000,
      pollIntervalMs: 0,
      onEvent: () => {},
    });
    closers.push(() => files.close());
    await atomicWrite(dir, { "tls.crt": serverB.cert, "tls.key": serverB.key });
    expect(await files.reload()).toMatchObject({ kind: "reloaded", certificate: { serialNumber: serialOf(serverB) } });
    expect(await files.reload()).toEqual({ kind: "unchanged" });
  });

  it("reports the certificate's not-after as certgate.tls.certificate.not_after", async () => {
    const dir = folder();
    await atomicWrite(dir, { "tls.crt": serverA.cert, "tls.key": serverA.key });
    const metrics = createTestMetrics();
    closers.push(() => metrics.shutdown());
    const files = createTlsFiles({
      cert: join(dir, "tls.crt"),
      key: join(dir, "tls.key"),
      meterProvider: metrics.provider,
      metricsName: "api",
      onEvent: () => {},
    });
    closers.push(() => files.close());
    const points = await metrics.points("certgate.tls.certificate.not_after");
    expect(points).toEqual([
      {
        attributes: { "certgate.tls.name": "api" },
        value: Math.floor(serverA.x509.notAfter.getTime() / 1000),
      },
    ]);
  });

  it("fails at start-up naming the file when the files do not form a set", async () => {
    const dir = folder();
    await atomicWrite(dir, {
      "tls.crt": serverA.cert,
      "tls.key": serverB.key,
      "bad.crt": "-----BEGIN CERTIFICATE-----\nMII",
    });
    expect(() => createTlsFiles({ cert: join(dir, "tls.crt"), key: join(dir, "tls.key") })).toThrow(
      /^certgate: createTlsFiles\(\): the key in .*tls\.key does not belong to the certificate in .*tls\.crt$/,
    );
    expect(() => createTlsFiles({ cert: join(dir, "bad.crt"), key: join(dir, "tls.key") })).toThrow(
      /bad\.crt holds a PEM block that is cut short or broken/,
    );
    expect(() => createTlsFiles({ cert: join(dir, "missing.crt"), key: join(dir, "tls.key") })).toThrow(
      /cannot read .*missing\.crt: ENOENT/,
    );
    const mixed = folder();
    await atomicWrite(mixed, { "tls.crt": serverA.cert, "tls.key": serverA.key, "ca.crt": ca.cert + serverA.key });
    expect(() =>
      createTlsFiles({ cert: join(mixed, "tls.crt"), key: join(mixed, "tls.key"), ca: join(mixed, "ca.crt") }),
    ).toThrow(/ca\.crt holds a private key; give only CA certificates$/);
    expect(() => createTlsFiles({ cert: "", key: "k" })).toThrow(/options\.cert must be a file path/);
  });
});

// Whether a TLS 1.3 server that requires a verified client certificate
// admits `client`: TLS 1.3 reports a refused client certificate only after
// the handshake, so a request is made and answered (or not).
function handshake(port: number, client: IssuedCertificate): Promise<"admitted" | "refused"> {
  return new Promise((resolve) => {
    const req = https.request(
      {
        host: "127.0.0.1",
        port,
        path: "/",
        rejectUnauthorized: false,
        cert: client.cert,
        key: client.key,
        agent: false,
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode === 200 ? "admitted" : "refused"));
      },
    );
    req.on("error", () => resolve("refused"));
    req.end();
  });
}
