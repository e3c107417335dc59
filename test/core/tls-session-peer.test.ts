// certgate reads a new connection's client certificate from its TLS session
// (getSession()), checked once per process against getPeerCertificate().
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { peerDerOfTlsSession } from "../../src/core/tls-session-peer.js";
import type { TlsSocketLike } from "../../src/core/peer-certificate.js";
import { createDecisionCore } from "../../src/decision/decision.js";
import { issueDevCertificate } from "../../src/dev-certificates.js";
import { captureWarnings, createTestPki, createTestStore, echoPath as echo, type TestPki } from "../support/harness.js";
import { mutatedBytes, params } from "../support/property.js";
import { captureTlsSessions, type SeenSession } from "../support/tls-session.js";

let pki: TestPki;
let rsa: { key: string; cert: string };
let dir: string;
beforeAll(async () => {
  pki = await createTestPki();
  // An RSA client certificate made by openssl, not by certgate's dev CA.
  dir = await mkdtemp(join(tmpdir(), "certgate-session-"));
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      "k.pem",
      "-out",
      "c.pem",
      "-subj",
      "/CN=rsa",
      "-days",
      "1",
    ],
    { cwd: dir, stdio: "ignore" },
  );
  rsa = { key: await readFile(join(dir, "k.pem"), "utf8"), cert: await readFile(join(dir, "c.pem"), "utf8") };
});
afterAll(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

const server = () => ({ key: pki.server.key, cert: pki.server.cert });
const alice = () => ({ key: pki.alice.key, cert: pki.alice.cert });

function derOf(seen: SeenSession): Buffer | undefined {
  const der = seen.session === undefined ? undefined : peerDerOfTlsSession(Buffer.from(seen.session));
  return der === undefined ? undefined : Buffer.from(der, "latin1");
}

describe("peerDerOfTlsSession()", () => {
  it("reads the certificate getPeerCertificate() reports: TLS 1.2 and 1.3, with and without a chain, EC and RSA", async () => {
    const clients = [
      { ...alice(), maxVersion: "TLSv1.3" as const },
      { ...alice(), maxVersion: "TLSv1.2" as const },
      { ...alice(), ca: pki.ca.cert },
      { ...alice(), ca: pki.ca.cert, maxVersion: "TLSv1.2" as const },
      { ...rsa },
      { ...rsa, maxVersion: "TLSv1.2" as const },
      { key: pki.bob.key, cert: pki.bob.cert },
    ];
    const seen = await captureTlsSessions(server(), clients);
    for (const s of seen) {
      expect(s.info.raw).toBeInstanceOf(Buffer);
      expect(Buffer.from(derOf(s) ?? [])).toEqual(s.info.raw);
    }
    // Different clients, different certificates: the read is not a constant.
    expect(Buffer.from(derOf(seen[0]!)!)).not.toEqual(Buffer.from(derOf(seen[6]!)!));
  });

  it("reads the certificate of a resumed session", async () => {
    for (const maxVersion of ["TLSv1.2", "TLSv1.3"] as const) {
      const [first, again] = await captureTlsSessions(server(), [
        { ...alice(), maxVersion },
        { ...alice(), maxVersion, resume: true },
      ]);
      expect(first?.reused).toBe(false);
      expect(again?.reused).toBe(true);
      expect(Buffer.from(derOf(again!)!)).toEqual(again!.info.raw);
    }
  });

  it("answers undefined when the client sent no certificate", async () => {
    const [seen] = await captureTlsSessions(server(), [{}]);
    expect(seen?.info).toEqual({});
    expect(seen?.session).toBeDefined();
    expect(derOf(seen!)).toBeUndefined();
  });

  it("zeroes the session it read, which holds the resumption secret", async () => {
    const [seen] = await captureTlsSessions(server(), [alice()]);
    const session = Buffer.from(seen!.session!);
    const der = peerDerOfTlsSession(session);
    expect(session.every((b) => b === 0)).toBe(true);
    // The certificate is a copy, not a view of the zeroed buffer.
    expect(Buffer.from(der!, "latin1")).toEqual(seen!.info.raw);
  });

  it("returns a certificate or undefined, or throws a RangeError, for damaged sessions, and zeroes them", async () => {
    const [seen] = await captureTlsSessions(server(), [alice()]);
    const valid = new Uint8Array(seen!.session!);
    fc.assert(
      fc.property(fc.oneof(mutatedBytes(valid), fc.uint8Array({ maxLength: 300 })), (bytes) => {
        const session = Buffer.from(bytes);
        try {
          const der = peerDerOfTlsSession(session);
          if (der !== undefined) expect(der.charCodeAt(0)).toBe(0x30);
        } catch (error) {
          expect(error).toBeInstanceOf(RangeError);
        }
        expect(session.every((b) => b === 0)).toBe(true);
      }),
      params(),
    );
  });
});

describe("readPeerCertificate()", () => {
  // A socket-like object over what a real server saw, counting Node's reads.
  function socketOf(session: Buffer | undefined, info: SeenSession["info"], authorized = false) {
    const calls = { session: 0, info: 0 };
    const socket: TlsSocketLike & { server: { requestCert: boolean } } = {
      server: { requestCert: true },
      encrypted: true,
      authorized,
      authorizationError: authorized ? undefined : "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
      getSession: () => {
        calls.session++;
        return session === undefined ? undefined : Buffer.from(session);
      },
      getPeerCertificate: () => {
        calls.info++;
        return info;
      },
      getPeerX509Certificate: () => {
        throw new Error("getPeerX509Certificate() called");
      },
    };
    return { socket, calls };
  }

  // Each case loads the module anew: whether sessions are read is decided
  // once per process.
  async function freshReader() {
    vi.resetModules();
    return (await import("../../src/core/peer-certificate.js")).readPeerCertificate;
  }

  it("reads the session, checked once against getPeerCertificate(), then the session alone", async () => {
    const read = await freshReader();
    const seen = await captureTlsSessions(server(), [alice(), { key: pki.bob.key, cert: pki.bob.cert }, {}]);
    const first = socketOf(seen[0]!.session, seen[0]!.info);
    const second = socketOf(seen[1]!.session, seen[1]!.info);
    const none = socketOf(seen[2]!.session, seen[2]!.info);
    expect(read({}, () => first.socket).certificate?.subject).toBe("CN=alice");
    expect(first.calls).toEqual({ session: 1, info: 1 });
    expect(read({}, () => second.socket).certificate?.subject).toBe("CN=bob");
    expect(second.calls).toEqual({ session: 1, info: 0 });
    expect(read({}, () => none.socket).certificate).toBeUndefined();
    expect(none.calls).toEqual({ session: 1, info: 0 });
  });

  it("never reads the session with CERTGATE_SESSION=off: getPeerCertificate() on every connection", async () => {
    vi.stubEnv("CERTGATE_SESSION", "off");
    try {
      const read = await freshReader();
      const seen = await captureTlsSessions(server(), [alice(), { key: pki.bob.key, cert: pki.bob.cert }]);
      const first = socketOf(seen[0]!.session, seen[0]!.info);
      const second = socketOf(seen[1]!.session, seen[1]!.info);
      expect(read({}, () => first.socket).certificate?.subject).toBe("CN=alice");
      expect(read({}, () => second.socket).certificate?.subject).toBe("CN=bob");
      expect(first.calls).toEqual({ session: 0, info: 1 });
      expect(second.calls).toEqual({ session: 0, info: 1 });
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it("warns about an unknown CERTGATE_SESSION value and keeps reading the session", async () => {
    vi.stubEnv("CERTGATE_SESSION", "of");
    const warnings = captureWarnings();
    try {
      const read = await freshReader();
      const [seen] = await captureTlsSessions(server(), [alice()]);
      const first = socketOf(seen!.session, seen!.info);
      expect(read({}, () => first.socket).certificate?.subject).toBe("CN=alice");
      expect(first.calls).toEqual({ session: 1, info: 1 });
      expect(warnings.warnings.map((w) => w.code)).toContain("CERTGATE_SESSION_SETTING");
    } finally {
      warnings.stop();
      vi.unstubAllEnvs();
    }
  });

  it("keeps getPeerCertificate() for good, with a warning, when the session holds another certificate", async () => {
    const read = await freshReader();
    const [a, b] = await captureTlsSessions(server(), [alice(), { key: pki.bob.key, cert: pki.bob.cert }]);
    const warnings = captureWarnings();
    try {
      // The session says bob, Node's report says alice: Node's report wins.
      const forged = socketOf(b!.session, a!.info);
      expect(read({}, () => forged.socket).certificate?.subject).toBe("CN=alice");
      const next = socketOf(b!.session, b!.info);
      expect(read({}, () => next.socket).certificate?.subject).toBe("CN=bob");
      expect(next.calls).toEqual({ session: 0, info: 1 });
      await vi.waitFor(() => expect(warnings.warnings.map((w) => w.code)).toContain("CERTGATE_SESSION"));
    } finally {
      warnings.stop();
    }
  });

  it("asks getPeerCertificate() when the session cannot be read", async () => {
    const read = await freshReader();
    const [a] = await captureTlsSessions(server(), [alice()]);
    for (const session of [Buffer.from("junk"), undefined]) {
      const broken = socketOf(session, a!.info);
      expect(read({}, () => broken.socket).certificate?.subject).toBe("CN=alice");
      expect(broken.calls.info).toBe(1);
    }
  });

  it("shares one Certificate, and so one decision, among a returning client's connections", async () => {
    const read = await freshReader();
    const seen = await captureTlsSessions(server(), [
      alice(),
      alice(),
      alice(),
      { key: pki.bob.key, cert: pki.bob.cert },
    ]);
    const peers = seen.map((s) => read({}, () => socketOf(s.session, s.info).socket));
    // Each connection its own PeerCertificate (per-connection limits count
    // by it); the first read of the process is checked against
    // getPeerCertificate(), the next ones share their certificate.
    expect(new Set(peers).size).toBe(4);
    expect(peers[2]?.certificate).toBe(peers[1]?.certificate);
    expect(peers[3]?.certificate).not.toBe(peers[1]?.certificate);
    expect(peers.map((p) => p.certificate?.subject)).toEqual(["CN=alice", "CN=alice", "CN=alice", "CN=bob"]);

    const store = createTestStore([pki.alice]);
    const core = createDecisionCore({ store });
    for (const peer of [peers[1], peers[2]]) expect((await core.enforce(peer, echo, "gate")).kind).toBe("admitted");
    expect(store.lookups).toBe(1);
    expect((await core.enforce(peers[3], echo, "gate")).kind).toBe("refused");
    expect(store.lookups).toBe(2);
    // Node's TLS layer judged this connection otherwise: decided again.
    const trusted = read({}, () => socketOf(seen[1]!.session, seen[1]!.info, true).socket);
    expect(trusted).toMatchObject({
      certificate: peers[1]?.certificate,
      authorized: true,
      authorizationError: undefined,
    });
    expect((await core.enforce(trusted, echo, "gate")).kind).toBe("admitted");
    expect(store.lookups).toBe(3);
    // A revocation reaches the shared decision at once.
    store.remove(pki.alice);
    expect((await core.enforce(peers[2], echo, "gate")).kind).toBe("refused");
  });

  it("keeps no certificate over 8 KiB, however often it returns", async () => {
    const read = await freshReader();
    const big = await issueDevCertificate(pki.ca, {
      commonName: "big",
      usages: ["client"],
      dnsNames: Array.from({ length: 400 }, (_, i) => `host-${i}.a-rather-long-subdomain.example.com`),
    });
    expect(big.der.length).toBeGreaterThan(8192);
    const client = { key: big.key, cert: big.cert };
    const seen = await captureTlsSessions(server(), [alice(), client, client]);
    const peers = seen.map((s) => read({}, () => socketOf(s.session, s.info).socket));
    expect(peers[1]?.certificate?.subject).toBe("CN=big");
    expect(peers[2]?.certificate?.sha256).toBe(peers[1]?.certificate?.sha256);
    expect(peers[2]?.certificate).not.toBe(peers[1]?.certificate);
  });
});
