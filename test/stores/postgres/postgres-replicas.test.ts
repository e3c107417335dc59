// Two `certgate serve --database` processes on one PostgreSQL database, with
// mirrors and API servers following them. Skipped without PostgreSQL.
import { rm } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError, createClient, type Client, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { parseCertificate } from "../../../src/core/certificate.js";
import type { IssuedCertificate } from "../../../src/dev-certificates.js";
import { CertificateStoreService } from "../../../src/gen/certgate/v1/certificate_store_pb.js";
import { createClientCertInterceptor } from "../../../src/connect/client-cert-interceptor.js";
import { createRemoteStore, type RemoteStore, type RemoteStoreEvent } from "../../../src/stores/remote-store.js";
import {
  createCliFixture,
  killAll,
  serveAccessArgs,
  startServe,
  type CliFixture,
  type Serve,
} from "../../support/cli-harness.js";
import { closeAfterTests, startEchoServer, waitFor } from "../../support/harness.js";
import {
  createTestDatabase,
  postgresSkipReason,
  terminateConnections,
  type TestDatabase,
} from "../../support/postgres.js";

const skip = await postgresSkipReason();
const signal = new AbortController().signal;
// Generous for a loaded CI machine; `npm run bench` measures the real delay.
const deadline = 5000;

describe.skipIf(skip !== undefined)("certgate serve --database, two replicas", () => {
  const res = closeAfterTests();
  let fx: CliFixture;
  let db: TestDatabase;
  let a: Serve;
  let b: Serve;
  const mirrors: RemoteStore[] = [];
  beforeAll(async () => {
    [fx, db] = await Promise.all([createCliFixture(), createTestDatabase()]);
    const args = ["--database", db.url, ...serveAccessArgs(fx)];
    // One after the other would work as well: migrations take a lock.
    [a, b] = await Promise.all([startServe(args), startServe(args)]);
  });
  afterAll(async () => {
    await Promise.all(mirrors.map((m) => m.close()));
    await Promise.all([a?.stop(), b?.stop()]);
    killAll();
    await db?.drop();
    await rm(fx.tmp, { recursive: true, force: true });
  });

  function transport(serve: Serve, client: IssuedCertificate): Transport {
    return createGrpcTransport({
      baseUrl: serve.url,
      nodeOptions: { ca: fx.pki.ca.cert, cert: client.cert, key: client.key },
    });
  }
  function admin(serve: Serve): Client<typeof CertificateStoreService> {
    return createClient(CertificateStoreService, transport(serve, fx.admin));
  }
  async function mirror(...serves: Serve[]): Promise<{ store: RemoteStore; events: RemoteStoreEvent[] }> {
    const events: RemoteStoreEvent[] = [];
    const store = createRemoteStore({
      transports: serves.map((s) => transport(s, fx.reader)),
      onEvent: (e) => events.push(e),
    });
    mirrors.push(store);
    await store.ready();
    return { store, events };
  }
  const admits = async (store: RemoteStore, who: IssuedCertificate) =>
    (await store.lookup(parseCertificate(who.der), signal)).kind === "admitted";

  it("an upload on A reaches a mirror following B, and a deletion on B an open connection to a server following A", async () => {
    expect(a.output().stdout).toMatch(/database postgres:\/\/.*\(0 certificates\)/);
    const onB = await mirror(b);
    expect(await admits(onB.store, fx.pki.alice)).toBe(false);
    await admin(a).createCertificate({ certificateId: "alice", certificate: fx.pki.alice.der });
    await waitFor(() => admits(onB.store, fx.pki.alice), "the mirror of B to admit alice", deadline);
    expect(await admits(onB.store, fx.pki.bob)).toBe(false);

    const onA = await mirror(a);
    const api = await startEchoServer({
      pki: fx.pki,
      interceptors: [createClientCertInterceptor({ store: onA.store })],
    });
    res.servers.push(api);
    const alice = res.echoClient(api, fx.pki, fx.pki.alice);
    expect((await alice.echo({ text: "hi" })).text).toBe("hi");
    await admin(b).deleteCertificate({ certificateId: "alice" });
    await waitFor(
      async () => {
        try {
          await alice.echo({ text: "again" });
          return false;
        } catch (error) {
          return ConnectError.from(error).code === Code.Unauthenticated;
        }
      },
      "the open connection to be refused",
      deadline,
    );
    expect(api.stats.connections).toBe(1);
  });

  it("loses nothing when the replicas' database connections are terminated", async () => {
    const onB = await mirror(b);
    expect(await terminateConnections(db.name)).toBeGreaterThanOrEqual(2);
    await admin(a).createCertificate({ certificateId: "bob", certificate: fx.pki.bob.der });
    await waitFor(() => admits(onB.store, fx.pki.bob), "the mirror of B to admit bob", deadline);
    await terminateConnections(db.name);
    await admin(a).deleteCertificate({ certificateId: "bob" });
    await waitFor(async () => !(await admits(onB.store, fx.pki.bob)), "the mirror of B to refuse bob", deadline);
    expect(onB.store.state).toBe("synced");
  });

  it("moves a mirror from a killed replica to the other, resuming without a snapshot and missing nothing", async () => {
    await admin(a).createCertificate({ certificateId: "carol", certificate: fx.pki.alice.der });
    const both = await mirror(a, b);
    await waitFor(() => admits(both.store, fx.pki.alice), "carol (alice's certificate) admitted", deadline);
    expect(both.events.filter((e) => e.kind === "synced")).toEqual([
      expect.objectContaining({ via: "snapshot", transportIndex: 0 }),
    ]);
    // A frozen replica hears nothing: the changes on B reach the mirror only through B.
    a.child.kill("SIGSTOP");
    await admin(b).createCertificate({ certificateId: "bob", certificate: fx.pki.bob.der });
    await admin(b).deleteCertificate({ certificateId: "carol" });
    expect(await admits(both.store, fx.pki.bob)).toBe(false);
    a.child.kill("SIGKILL");
    await waitFor(() => admits(both.store, fx.pki.bob), "bob admitted through B", deadline);
    expect(await admits(both.store, fx.pki.alice)).toBe(false);
    expect(both.events.filter((e) => e.kind === "synced")).toEqual([
      expect.objectContaining({ via: "snapshot", transportIndex: 0 }),
      expect.objectContaining({ via: "resume", transportIndex: 1 }),
    ]);
    // Lookup mode asks the next replica when one does not answer.
    const lookup = createRemoteStore({
      mode: "lookup",
      transports: [transport(a, fx.reader), transport(b, fx.reader)],
    });
    mirrors.push(lookup);
    expect(await admits(lookup, fx.pki.bob)).toBe(true);
    expect(await admits(lookup, fx.pki.alice)).toBe(false);
  });
});
