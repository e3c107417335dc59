import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  canonicalSerialNumber,
  createClientCertGate,
  createCrlSet,
  createMemoryStore,
  createThumbprintStore,
  parseCertificate,
  type DecisionEvent,
} from "../../src/index.js";
import { parseCrl } from "../../src/policy/crl.js";
import { serialNumberOfDer } from "../../src/core/serial-number.js";
import { certificateMessage } from "../../src/service/convert.js";
import { runHere } from "../support/cli-harness.js";
import { createTestPki, echoPath, startEchoServer, type TestServer } from "../support/harness.js";
import { createOpensslCa, type OpensslCa, type OpensslIssued } from "../support/openssl-ca.js";
import { h2Call } from "../support/raw-requests.js";

describe("canonicalSerialNumber()", () => {
  it.each([
    ["0f", "0F"],
    ["F", "0F"],
    ["00:A1:b2", "A1B2"],
    ["00 a1 b2", "A1B2"],
    ["8001", "8001"],
    ["-7fff", "-7FFF"],
    ["-00:7F:FF", "-7FFF"],
    ["0", "00"],
    ["0000", "00"],
    ["-0", "00"],
  ])("writes %j as %j", (input, canonical) => {
    expect(canonicalSerialNumber(input)).toBe(canonical);
  });

  it.each(["", "-", "xyz", "0x7F", "7F-", "--7F", "7F\n-1"])("refuses %j with a TypeError", (input) => {
    expect(() => canonicalSerialNumber(input)).toThrow(TypeError);
  });
});

describe("serialNumberOfDer()", () => {
  it.each([
    [[0x80, 0x01], "-7FFF"],
    [[0xff, 0x80, 0x01], "-7FFF"], // a redundant leading FF
    [[0xff], "-01"],
    [[0x80], "-80"],
    [[0x00, 0x80, 0x01], "8001"],
    [[0x00, 0x00, 0x0f], "0F"], // redundant leading zeros
    [[0x00], "00"],
    [[0x7f, 0xff], "7FFF"],
  ])("reads %j as %j", (bytes, canonical) => {
    expect(serialNumberOfDer(new Uint8Array(bytes))).toBe(canonical);
  });

  it("refuses an empty INTEGER", () => {
    expect(() => serialNumberOfDer(new Uint8Array(0))).toThrow(RangeError);
  });
});

describe("a negative serial number, from an openssl CA", () => {
  let ca: OpensslCa;
  let revoked: OpensslIssued;
  let kept: OpensslIssued;
  let leadingZero: OpensslIssued;
  let crl: string;
  let server: TestServer;
  const events: DecisionEvent[] = [];
  beforeAll(async () => {
    ca = await createOpensslCa();
    revoked = await ca.issue("revoked", "-0x7FFF");
    kept = await ca.issue("kept", "-0x7FFE");
    leadingZero = await ca.issue("high-bit", "0x8001"); // DER 00 80 01: the bytes of -0x7FFF with a leading zero
    ca.revoke(revoked);
    crl = await ca.crl();
    const pki = await createTestPki();
    server = await startEchoServer({
      pki,
      requestGate: createClientCertGate({
        store: createThumbprintStore([revoked, kept, leadingZero].map((c) => parseCertificate(c.cert).sha256)),
        validateTrust: { ca: [ca.cert] },
        validateRevocation: { crls: createCrlSet([crl]) },
        onDecision: (e) => events.push(e),
      }),
    });
  });
  afterAll(async () => {
    await server?.close();
    await ca?.remove();
  });

  const call = (who: OpensslIssued) =>
    h2Call(server.port, { authority: `localhost:${server.port}`, path: echoPath, body: '{"text":"hi"}', ...who });

  it("is written -7FFF on the certificate and on the CRL, as OpenSSL prints it", () => {
    expect(parseCertificate(revoked.cert).serialNumber).toBe("-7FFF");
    const der = Buffer.from(crl.replace(/-----[^-]+-----|\s/g, ""), "base64");
    expect([...parseCrl(new Uint8Array(der), "crl.pem").revoked]).toEqual(["-7FFF"]);
  });

  it("is refused as revoked under validateTrust and validateRevocation", async () => {
    events.length = 0;
    expect((await call(revoked)).status).toBe(401);
    expect(events).toMatchObject([{ kind: "refused", reason: "revoked" }]);
    expect(events[0]!.certificate?.serialNumber).toBe("-7FFF");
  });

  it("admits a certificate whose negative serial is not on the CRL", async () => {
    events.length = 0;
    expect((await call(kept)).status).toBe(200);
    expect(events).toMatchObject([{ kind: "admitted" }]);
    expect(events[0]!.certificate?.serialNumber).toBe("-7FFE");
  });

  it("admits 0x8001, whose DER bytes without the leading zero are the revoked serial's", async () => {
    expect(parseCertificate(leadingZero.cert).serialNumber).toBe("8001");
    expect((await call(leadingZero)).status).toBe(200);
  });

  it("is shown the same way by the store service and certgate thumbprint", async () => {
    const store = createMemoryStore();
    const stored = await store.put("revoked", parseCertificate(revoked.cert).der);
    expect(certificateMessage(stored).serialNumber).toBe("-7FFF");
    const cli = await runHere(["thumbprint", "--json", revoked.file]);
    expect(JSON.parse(cli.stdout).certificates[0].serialNumber).toBe("-7FFF");
    await store.close();
  });
});
