import { X509Certificate } from "node:crypto";
import * as http2 from "node:http2";
import type { TLSSocket } from "node:tls";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Code, createClient, createContextValues, type Interceptor } from "@connectrpc/connect";
import { EchoService } from "../../src/gen/certgate/example/v1/echo_pb.js";
import {
  createClientCertInterceptor,
  createThumbprintStore,
  peerCertificateContextValues,
  peerCertificateKey,
  peerCertificateOf,
  type PeerCertificate,
} from "../../src/index.js";
import { issueDevCertificate, type IssuedCertificate } from "../../src/dev-certificates.js";
import {
  captureWarnings,
  certificateOf,
  connectErrorOf,
  createTestPki,
  openTransport,
  startEchoServer,
  type OpenTransport,
  type TestPki,
  type TestServer,
  waitFor,
} from "../support/harness.js";

const echoPath = "/certgate.example.v1.EchoService/Echo";

let pki: TestPki;
let selfSigned: IssuedCertificate;
beforeAll(async () => {
  pki = await createTestPki();
  selfSigned = await issueDevCertificate(undefined, { commonName: "self-signed", usages: ["client"] });
});

const servers: TestServer[] = [];
const transports: OpenTransport[] = [];
afterEach(() => {
  for (const t of transports.splice(0)) t.close();
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

/** A server that counts getPeerCertificate() calls and records each call's PeerCertificate. */
async function countingServer(trustCa = false) {
  const peers: (PeerCertificate | undefined)[] = [];
  const record: Interceptor = (next) => (req) => {
    peers.push(req.contextValues.get(peerCertificateKey));
    return next(req);
  };
  const store = createThumbprintStore([pki.alice, selfSigned].map((c) => certificateOf(c).sha256));
  const server = await startEchoServer({
    pki,
    trustCa,
    interceptors: [record, createClientCertInterceptor({ store })],
  });
  servers.push(server);
  // count: the reads of the TLS session, where certgate takes the DER from;
  // info: getPeerCertificate(), asked once per process to check that read.
  const reads = { count: 0, info: 0 };
  server.server.on("secureConnection", (socket: TLSSocket) => {
    const session = socket.getSession;
    socket.getSession = function (this: TLSSocket) {
      reads.count++;
      return session.call(this);
    };
    const read = socket.getPeerCertificate;
    socket.getPeerCertificate = function (this: TLSSocket, detailed?: boolean) {
      reads.info++;
      return read.call(this, detailed as false);
    } as TLSSocket["getPeerCertificate"];
    // The decision reads what Node's TLS layer reports; it never builds
    // Node's X509Certificate for a thumbprint store.
    socket.getPeerX509Certificate = () => {
      throw new Error("getPeerX509Certificate() called");
    };
  });
  return { server, peers, reads };
}

describe("peerCertificateContextValues()", () => {
  for (const httpVersion of ["2", "1.1"] as const) {
    it(`admits 20 calls on one HTTP/${httpVersion} connection with one certificate read`, async () => {
      const { server, peers, reads } = await countingServer();
      const t = openTransport(server, pki, pki.alice, "connect", httpVersion);
      transports.push(t);
      const c = createClient(EchoService, t.transport);
      for (let i = 0; i < 10; i++) await c.echo({ text: `${i}` });
      await Promise.all(Array.from({ length: 10 }, (_, i) => c.echo({ text: `p${i}` })));
      expect(server.log.calls).toHaveLength(20);
      expect(server.stats.connections).toBe(1);
      expect(reads.count).toBe(1);
      expect(reads.info).toBeLessThanOrEqual(1);
      expect(new Set(peers).size).toBe(1);
    });
  }

  it("refuses to share one connection's certificate with another connection", async () => {
    const { server, peers, reads } = await countingServer();
    const alice = openTransport(server, pki, pki.alice);
    const bob = openTransport(server, pki, pki.bob);
    transports.push(alice, bob);
    await createClient(EchoService, alice.transport).echo({ text: "a" });
    const error = await connectErrorOf(createClient(EchoService, bob.transport).echo({ text: "b" }));
    expect(error.code).toBe(Code.Unauthenticated);
    expect(server.stats.sessions).toBe(2);
    expect(reads.count).toBe(2);
    expect(reads.info).toBeLessThanOrEqual(1);
    expect(peers.map((p) => p?.certificate?.subject)).toEqual(["CN=alice", "CN=bob"]);
  });

  it("admits with the chain verdict of Node's TLS layer recorded", async () => {
    const { server, peers } = await countingServer(true);
    for (const cert of [pki.alice, selfSigned]) {
      const t = openTransport(server, pki, cert);
      transports.push(t);
      await createClient(EchoService, t.transport).echo({ text: "x" });
    }
    expect(peers[0]).toMatchObject({ authorized: true, authorizationError: undefined, encrypted: true });
    expect(peers[1]).toMatchObject({ authorized: false, encrypted: true });
    expect(peers[1]?.authorizationError).toMatch(/SELF_SIGNED|self.signed/i);
  });

  it("refuses without a warning when the server asks for a certificate and the client has none", async () => {
    const { server, peers } = await countingServer();
    const warnings = captureWarnings();
    try {
      const t = openTransport(server, pki, undefined);
      transports.push(t);
      const error = await connectErrorOf(createClient(EchoService, t.transport).echo({ text: "x" }));
      expect(error.rawMessage).toBe("no client certificate presented");
      // Warnings are emitted on a later tick: give one a chance to arrive.
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.warnings.filter((w) => w.code?.startsWith("CERTGATE"))).toEqual([]);
    } finally {
      warnings.stop();
    }
    expect(peers[0]).toMatchObject({ certificate: undefined, encrypted: true });
    expect(peers[0]?.error).toBeUndefined();
  });

  for (const maxVersion of ["TLSv1.2", "TLSv1.3"] as const) {
    // A resumed TLS session skips the certificate exchange: the certificate
    // must come from the session, or every reconnecting client is refused.
    for (const [who, expected] of [
      ["alice", 200],
      ["bob", 401],
    ] as const) {
      it(`${expected === 200 ? "admits" : "refuses"} ${who} on a resumed ${maxVersion} session as on the first`, async () => {
        const { server } = await countingServer();
        const cert = pki[who];
        let ticket: Buffer | undefined;
        const statuses: number[] = [];
        for (let i = 0; i < 2; i++) {
          const session = http2.connect(server.url, {
            ca: pki.ca.cert,
            cert: cert.cert,
            key: cert.key,
            maxVersion,
            ...(ticket === undefined ? {} : { session: ticket }),
          });
          session.socket.on("session", (t: Buffer) => (ticket = t));
          try {
            const status = await new Promise<number>((resolve, reject) => {
              const stream = session.request({
                ":method": "POST",
                ":path": echoPath,
                "content-type": "application/json",
              });
              stream.on("response", (h) => resolve(Number(h[":status"])));
              stream.on("error", reject);
              stream.end("{}");
            });
            statuses.push(status);
            expect((session.socket as TLSSocket).isSessionReused()).toBe(i === 1);
            await waitFor(() => ticket !== undefined, "a TLS session ticket");
          } finally {
            session.destroy();
          }
        }
        expect(statuses).toEqual([expected, expected]);
      });
    }
  }

  it("admits the given context values and returns them", () => {
    const values = createContextValues();
    const socket = fakeTlsSocket(() => new X509Certificate(pki.alice.cert));
    expect(peerCertificateContextValues({ socket }, values)).toBe(values);
    expect(values.get(peerCertificateKey)?.certificate?.sha256).toBe(certificateOf(pki.alice).sha256);
  });
});

function fakeTlsSocket(read: () => X509Certificate | undefined) {
  const socket = {
    encrypted: true,
    authorized: false,
    authorizationError: null,
    reads: 0,
    getPeerX509Certificate() {
      socket.reads++;
      return read();
    },
  };
  return socket;
}

describe("peerCertificateOf()", () => {
  it("admits every stream of one HTTP/2 session to the same PeerCertificate, read once", () => {
    const socket = fakeTlsSocket(() => new X509Certificate(pki.alice.cert));
    const session = { socket };
    // Each HTTP/2 request has its own req.socket proxy: it must not be the key.
    const first = peerCertificateOf({ socket: { proxy: 1 }, stream: { session } });
    const second = peerCertificateOf({ socket: { proxy: 2 }, stream: { session } });
    expect(second).toBe(first);
    expect(socket.reads).toBe(1);
    expect(first.certificate?.sha1).toBe(certificateOf(pki.alice).sha1);
  });

  it("refuses to share a PeerCertificate between two sessions", () => {
    const a = fakeTlsSocket(() => new X509Certificate(pki.alice.cert));
    const b = fakeTlsSocket(() => new X509Certificate(pki.bob.cert));
    const proxy = {};
    const first = peerCertificateOf({ socket: proxy, stream: { session: { socket: a } } });
    const second = peerCertificateOf({ socket: proxy, stream: { session: { socket: b } } });
    expect(second).not.toBe(first);
    expect(second.certificate?.subject).toBe("CN=bob");
  });

  it("admits an HTTP/1.1 request keyed on its TLS socket", () => {
    const socket = fakeTlsSocket(() => new X509Certificate(pki.bob.cert));
    expect(peerCertificateOf({ socket })).toBe(peerCertificateOf({ socket }));
    expect(socket.reads).toBe(1);
  });

  it("refuses, without throwing, a connection whose socket cannot be read", () => {
    const broken = new Proxy(
      {},
      {
        get() {
          throw new Error("socket unbound");
        },
      },
    );
    const peer = peerCertificateOf({ socket: broken });
    expect(peer.certificate).toBeUndefined();
    expect(String(peer.error)).toContain("socket unbound");
    const throwing = fakeTlsSocket(() => {
      throw new Error("read failed");
    });
    expect(peerCertificateOf({ socket: throwing })).toMatchObject({ certificate: undefined, encrypted: true });
  });
});
