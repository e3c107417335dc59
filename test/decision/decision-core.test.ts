// certgate/core as an adapter author uses it: a peer certificate and a
// procedure in, an Enforcement out, no framework involved.
import { X509Certificate } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import {
  createDecisionCore,
  procedureName,
  readPeerCertificate,
  refusals,
  statusCodes,
  type CertificateStore,
  type DecisionEvent,
  type Enforcement,
  type PeerCertificate,
} from "../../src/core.js";
import { parseCertificate } from "../../src/core/certificate.js";
import { createThumbprintStore } from "../../src/stores/thumbprint-store.js";
import { createDevCa, issueDevCertificate, type IssuedCertificate } from "../../src/dev-certificates.js";

let alice: IssuedCertificate;
let bob: IssuedCertificate;
let alicePeer: PeerCertificate;
let bobPeer: PeerCertificate;
const procedure = "/pkg.v1.Service/Method";

beforeAll(async () => {
  const ca = await createDevCa();
  alice = await issueDevCertificate(ca, { commonName: "alice", usages: ["client"] });
  bob = await issueDevCertificate(ca, { commonName: "bob", usages: ["client"] });
  alicePeer = {
    certificate: parseCertificate(alice.der),
    authorized: true,
    authorizationError: undefined,
    encrypted: true,
  };
  bobPeer = {
    certificate: parseCertificate(bob.der),
    authorized: true,
    authorizationError: undefined,
    encrypted: true,
  };
});

async function settled(result: Enforcement | Promise<Enforcement>): Promise<Enforcement> {
  return await result;
}

describe("createDecisionCore().enforce()", () => {
  it("admits a known certificate, synchronously and without allocating once the connection is warm", async () => {
    const core = createDecisionCore({ store: createThumbprintStore(parseCertificate(alice.der).sha256) });
    const first = await settled(core.enforce(alicePeer, procedure, "interceptor"));
    expect(first).toMatchObject({ kind: "admitted", certificate: { sha256: parseCertificate(alice.der).sha256 } });
    const warm = core.enforce(alicePeer, procedure, "interceptor");
    expect(warm).not.toBeInstanceOf(Promise);
    expect(warm).toBe(core.enforce(alicePeer, procedure, "gate"));
  });

  it("refuses an unknown certificate and none with status, code, message and the detail fields", async () => {
    const core = createDecisionCore({ store: createThumbprintStore(parseCertificate(alice.der).sha256) });
    expect(await settled(core.enforce(bobPeer, procedure, "gate"))).toMatchObject({
      kind: "refused",
      status: "unauthenticated",
      code: 16,
      message: "client certificate not allowed",
      detail: { reason: "not_allowed", procedure },
    });
    expect(
      await settled(
        core.enforce(undefined, { service: { typeName: "pkg.v1.Service" }, method: { name: "Method" } }, "gate"),
      ),
    ).toMatchObject({
      kind: "refused",
      detail: { reason: "no_certificate", procedure },
    });
  });

  it("refuses a known certificate that identities do not admit with permission_denied", async () => {
    const core = createDecisionCore({
      store: createThumbprintStore([alice, bob].map((c) => parseCertificate(c.der).sha256)),
      rules: [{ procedure: "/pkg.v1.Admin/*", identities: [{ commonName: "alice" }] }],
    });
    expect(await settled(core.enforce(bobPeer, "/pkg.v1.Admin/Delete", "interceptor"))).toMatchObject({
      kind: "refused",
      status: "permission_denied",
      code: statusCodes.permission_denied,
      message: refusals.procedure_not_allowed.message,
      detail: { reason: "not_allowed", procedure: "/pkg.v1.Admin/Delete" },
    });
    expect(await settled(core.enforce(alicePeer, "/pkg.v1.Admin/Delete", "interceptor"))).toMatchObject({
      kind: "admitted",
    });
    expect(await settled(core.enforce(bobPeer, procedure, "interceptor"))).toMatchObject({ kind: "admitted" });
  });

  it("passes an open procedure and a report-only refusal, with no certificate for the handler", async () => {
    const events: DecisionEvent[] = [];
    const core = createDecisionCore({
      store: createThumbprintStore(parseCertificate(alice.der).sha256),
      rules: [{ procedure: "/grpc.health.v1.Health/*", allow: "any" }],
      reportOnly: true,
      onDecision: (event) => events.push(event),
    });
    expect(core.enforce(undefined, "/grpc.health.v1.Health/Check", "gate")).toEqual({
      kind: "passed",
      certificate: undefined,
    });
    expect(await settled(core.enforce(bobPeer, procedure, "gate"))).toEqual({ kind: "passed", certificate: undefined });
    expect(events.map((e) => [e.open, e.kind, e.reason, e.reportOnly])).toEqual([
      [true, "admitted", undefined, false],
      [false, "refused", "not_allowed", true],
    ]);
  });

  it("refuses when the store fails, keeping the failure as the cause and a store's own reason out of the detail", async () => {
    const failure = new Error("database down");
    const broken: CertificateStore = {
      revision: 1,
      lookup: () => Promise.resolve({ kind: "error", error: failure }),
      onChange: () => () => undefined,
      close: () => Promise.resolve(),
    };
    const refused = await settled(createDecisionCore({ store: broken }).enforce(alicePeer, procedure, "gate"));
    expect(refused).toMatchObject({
      kind: "refused",
      status: "unauthenticated",
      detail: { reason: "store_unavailable" },
      cause: failure,
    });
    const secretive: CertificateStore = {
      ...broken,
      lookup: () => Promise.resolve({ kind: "refused", reason: "on the naughty list of bob" }),
    };
    expect(await settled(createDecisionCore({ store: secretive }).enforce(alicePeer, procedure, "gate"))).toMatchObject(
      {
        message: "client certificate refused",
        detail: { reason: "refused" },
      },
    );
  });
});

describe("readPeerCertificate()", () => {
  it("admits one PeerCertificate per connection key, reading the socket once", () => {
    const connection = {};
    let reads = 0;
    const socket = {
      encrypted: true,
      authorized: true,
      authorizationError: undefined,
      getPeerX509Certificate: () => {
        reads++;
        return new X509Certificate(alice.der);
      },
    };
    const first = readPeerCertificate(connection, () => socket);
    expect(first).toMatchObject({
      authorized: true,
      encrypted: true,
      certificate: { sha256: parseCertificate(alice.der).sha256 },
    });
    expect(readPeerCertificate(connection, () => socket)).toBe(first);
    expect(reads).toBe(1);
  });

  it("refuses to throw: an unreadable socket or certificate is a peer without a certificate, with the error", () => {
    const throwing = readPeerCertificate({}, () => {
      throw new Error("gone");
    });
    expect(throwing).toMatchObject({ certificate: undefined, encrypted: false });
    expect(String(throwing.error)).toMatch(/gone/);
    const badCertificate = readPeerCertificate({}, () => ({
      encrypted: true,
      getPeerX509Certificate: () => {
        throw new Error("bad certificate");
      },
    }));
    expect(badCertificate).toMatchObject({ certificate: undefined, encrypted: true });
    expect(badCertificate.error).toBeInstanceOf(Error);
  });
});

describe("procedureName()", () => {
  it("builds the procedure from a string or a service and method", () => {
    expect(procedureName("/a.B/C")).toBe("/a.B/C");
    expect(procedureName({ service: { typeName: "a.B" }, method: { name: "C" } })).toBe("/a.B/C");
  });
});
