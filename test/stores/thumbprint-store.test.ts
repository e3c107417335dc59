import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Code, createClient } from "@connectrpc/connect";
import { EchoService } from "../../src/gen/certgate/example/v1/echo_pb.js";
import { createClientCertInterceptor, createThumbprintStore, type CertificateStore } from "../../src/index.js";
import { issueDevCertificate, type IssuedCertificate } from "../../src/dev-certificates.js";
import {
  certificateOf,
  connectErrorOf,
  createTestPki,
  openTransport,
  startEchoServer,
  type OpenTransport,
  type Protocol,
  type TestPki,
  type TestServer,
} from "../support/harness.js";

let pki: TestPki;
let carol: IssuedCertificate;
/** Self-signed, with the same subject as alice: only the thumbprint tells them apart. */
let fakeAlice: IssuedCertificate;

beforeAll(async () => {
  pki = await createTestPki();
  carol = await issueDevCertificate(pki.ca, { commonName: "carol", usages: ["client"] });
  fakeAlice = await issueDevCertificate(undefined, { commonName: "alice", usages: ["client"] });
});

const servers: TestServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function serve(store: CertificateStore): Promise<TestServer> {
  const server = await startEchoServer({ pki, interceptors: [createClientCertInterceptor({ store })] });
  servers.push(server);
  return server;
}

const transports: OpenTransport[] = [];
afterEach(() => {
  for (const t of transports.splice(0)) t.close();
});

async function echo(server: TestServer, client: IssuedCertificate | undefined, protocol: Protocol = "connect") {
  const t = openTransport(server, pki, client, protocol);
  transports.push(t);
  return (await createClient(EchoService, t.transport).echo({ text: "hello" })).text;
}

async function refusal(server: TestServer, client: IssuedCertificate | undefined, protocol: Protocol = "connect") {
  const error = await connectErrorOf(echo(server, client, protocol));
  expect(error.code).toBe(Code.Unauthenticated);
  expect(server.log.calls).toEqual([]);
  return error.rawMessage;
}

function pairs(hex: string, separator: string): string {
  return hex.match(/../g)!.join(separator);
}

describe("createThumbprintStore()", () => {
  const spellings: [string, "sha1" | "sha256", (hex: string) => string][] = [
    ["SHA-1, upper case", "sha1", (h) => h],
    ["SHA-1, lower case", "sha1", (h) => h.toLowerCase()],
    ["SHA-1, colons", "sha1", (h) => pairs(h, ":")],
    ["SHA-1, spaces and U+200E as Windows copies it", "sha1", (h) => `\u200e${pairs(h.toLowerCase(), " ")}`],
    ["SHA-1, U+200F and U+FEFF", "sha1", (h) => `\ufeff${h}\u200f`],
    ["SHA-256, upper case", "sha256", (h) => h],
    ["SHA-256, lower case with colons", "sha256", (h) => pairs(h.toLowerCase(), ":")],
    ["SHA-256, spaces and U+200E", "sha256", (h) => `\u200e${pairs(h, " ")}`],
  ];
  for (const [spelling, algorithm, spell] of spellings) {
    describe(`pinned by ${spelling}`, () => {
      let server: TestServer;
      beforeAll(async () => {
        server = await serve(createThumbprintStore(spell(certificateOf(pki.alice)[algorithm])));
      });
      afterEach(() => {
        server.log.calls.length = 0;
      });
      it("admits the pinned certificate over TLS", async () => {
        expect(await echo(server, pki.alice)).toBe("hello");
        expect(server.log.calls).toEqual(["echo"]);
      });
      it("refuses another certificate over TLS", async () => {
        expect(await refusal(server, pki.bob)).toBe("client certificate not allowed");
      });
    });
  }

  describe("with a mixed SHA-1 / SHA-256 list", () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await serve(
        createThumbprintStore([certificateOf(pki.alice).sha1.toLowerCase(), pairs(certificateOf(pki.bob).sha256, ":")]),
      );
    });
    afterEach(() => {
      server.log.calls.length = 0;
    });
    it("admits the certificate pinned by SHA-1 and the one pinned by SHA-256", async () => {
      expect(await echo(server, pki.alice)).toBe("hello");
      expect(await echo(server, pki.bob, "grpc")).toBe("hello");
    });
    it("refuses a certificate that is in neither list", async () => {
      expect(await refusal(server, carol)).toBe("client certificate not allowed");
      expect(await refusal(server, carol, "grpc")).toBe("client certificate not allowed");
    });
  });

  it("admits a Set of thumbprints, deduplicated", async () => {
    const alice = certificateOf(pki.alice);
    const store = createThumbprintStore(new Set([alice.sha1, alice.sha1.toLowerCase(), alice.sha256]));
    const verdict = await store.lookup(alice, new AbortController().signal);
    expect(verdict).toEqual({ kind: "admitted", entry: { id: alice.sha1, thumbprint: alice.sha1 } });
  });

  it("refuses at creation a list with one malformed entry, naming it", () => {
    const good = certificateOf(pki.alice).sha1;
    const typo = `${good.slice(0, 39)}`;
    expect(() => createThumbprintStore([good, typo])).toThrow(typo);
    expect(() => createThumbprintStore([good, "not a thumbprint"])).toThrow("not a thumbprint");
    expect(() => createThumbprintStore(pki.alice.cert)).toThrow(/PEM/);
  });

  it("refuses at creation an empty list or an empty thumbprint", () => {
    expect(() => createThumbprintStore([])).toThrow(/at least one thumbprint/);
    expect(() => createThumbprintStore(new Set<string>())).toThrow(/at least one thumbprint/);
    expect(() => createThumbprintStore("")).toThrow(/invalid thumbprint "": empty/);
  });

  it("admits by lookup with a not_allowed refusal for others, an error once closed", async () => {
    const store = createThumbprintStore(certificateOf(pki.alice).sha256);
    const signal = new AbortController().signal;
    expect((await store.lookup(certificateOf(pki.alice), signal)).kind).toBe("admitted");
    expect(await store.lookup(certificateOf(pki.bob), signal)).toEqual({ kind: "refused", reason: "not_allowed" });
    const revisions: number[] = [];
    store.onChange((r) => revisions.push(r));
    const before = store.revision;
    await store.close();
    expect(store.revision).not.toBe(before);
    expect(revisions).toEqual([store.revision]);
    expect((await store.lookup(certificateOf(pki.alice), signal)).kind).toBe("error");
  });

  it("refuses a certificate whose thumbprint differs from the pin only in one digit", async () => {
    const alice = certificateOf(pki.alice);
    const last = alice.sha256.at(-1) === "0" ? "1" : "0";
    const store = createThumbprintStore(`${alice.sha256.slice(0, 63)}${last}`);
    expect((await store.lookup(alice, new AbortController().signal)).kind).toBe("refused");
  });
});

describe("seed semantics", () => {
  describe("(1) a thumbprint equal to a desired value", () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await serve(createThumbprintStore(certificateOf(pki.alice).sha1));
    });
    afterEach(() => {
      server.log.calls.length = 0;
    });
    it("admits that certificate", async () => {
      expect(await echo(server, pki.alice)).toBe("hello");
      expect(await echo(server, pki.alice, "grpc")).toBe("hello");
    });
    it("refuses every other certificate, even one with the same subject", async () => {
      for (const other of [pki.bob, carol, fakeAlice, pki.ca]) {
        expect(await refusal(server, other)).toBe("client certificate not allowed");
      }
    });
    it("refuses a call without a certificate", async () => {
      expect(await refusal(server, undefined)).toBe("no client certificate presented");
      expect(await refusal(server, undefined, "grpc")).toBe("no client certificate presented");
    });
  });

  describe("(2) a thumbprint among the certificates uploaded to the service", () => {
    // The admitted set is the uploaded set. The well-known published sample
    // has its condition inverted (it refuses the uploaded certificates).
    let server: TestServer;
    beforeAll(async () => {
      const uploaded = [pki.alice, carol, fakeAlice];
      server = await serve(createThumbprintStore(uploaded.map((c) => certificateOf(c).sha1)));
    });
    afterEach(() => {
      server.log.calls.length = 0;
    });
    it("admits every uploaded certificate", async () => {
      for (const uploaded of [pki.alice, carol, fakeAlice]) {
        expect(await echo(server, uploaded)).toBe("hello");
      }
      expect(server.log.calls).toEqual(["echo", "echo", "echo"]);
    });
    it("refuses a certificate that was not uploaded", async () => {
      expect(await refusal(server, pki.bob)).toBe("client certificate not allowed");
      expect(await refusal(server, pki.bob, "grpc")).toBe("client certificate not allowed");
    });
    it("refuses a call without a certificate", async () => {
      expect(await refusal(server, undefined)).toBe("no client certificate presented");
    });
  });
});
