// `certgate verify --online` against a real `openssl ocsp` responder and a
// CRL served over HTTP: exit status and messages.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectFailure, run, runHere } from "../support/cli-harness.js";
import { freePort } from "../support/free-port.js";
import { createOcspPki, type OcspIssued, type OcspPki, type OcspResponder } from "../support/ocsp-pki.js";
import { startRevocationStub, type RevocationStub } from "../support/revocation-stub.js";

let pki: OcspPki;
let responder: OcspResponder;
let crlServer: RevocationStub;
let good: OcspIssued;
let revoked: OcspIssued;
let crlOnly: OcspIssued;
let neither: OcspIssued;
let caFile: string;

beforeAll(async () => {
  pki = await createOcspPki();
  const port = await freePort();
  const ocspUrl = `http://127.0.0.1:${port}/`;
  crlServer = await startRevocationStub({ kind: "status", status: 404 });
  good = await pki.issue("good", { ocspUrl });
  revoked = await pki.issue("revoked", { ocspUrl });
  crlOnly = await pki.issue("crl-only", { crlUrl: `${crlServer.url}ca.crl` });
  neither = await pki.issue("neither");
  pki.revoke(revoked);
  crlServer.mode = { kind: "bytes", bytes: await pki.crl() };
  responder = await pki.responder("ca", { port });
  caFile = join(pki.dir, "ca.pem");
  // A chain file: the certificate, then its issuer.
  await writeFile(join(pki.dir, "good-chain.pem"), good.cert + pki.cert);
}, 30_000);

afterAll(async () => {
  await responder?.stop();
  await crlServer?.close();
  await pki?.remove();
});

describe("certgate verify --online", () => {
  it("says a good certificate is not revoked (OCSP), exit 0", async () => {
    const result = await runHere(["verify", "--online", "--issuer", caFile, good.file]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^not revoked: .*good\.pem \(ocsp http:\/\/127\.0\.0\.1:\d+\/\)\n$/);
  });
  it("exits once answered as a process of its own (the built command)", async () => {
    const result = await run(["verify", "--online", "--issuer", caFile, good.file]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^not revoked: /);
  });
  it("finds the issuer after the certificate in FILE", async () => {
    const result = await runHere(["verify", "--online", join(pki.dir, "good-chain.pem")]);
    expect(result.code, result.stderr).toBe(0);
  });
  it("refuses a revoked certificate, exit 3", async () => {
    const result = await runHere(["verify", "--online", "--issuer", caFile, revoked.file]);
    expectFailure(result, 3, `certgate: verify ${revoked.file}: not admitted: revoked (the issuer revoked it)`);
  });
  it("checks the CRL of the distribution point", async () => {
    const result = await runHere(["verify", "--online", "--json", "--issuer", caFile, crlOnly.file]);
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ admitted: true, reason: "", online: [`crl ${crlServer.url}ca.crl`] });
  });
  it("exits 1 with the reason when the responder cannot answer", async () => {
    const down = `http://127.0.0.1:${await freePort()}/`;
    const result = await runHere(["verify", "--online", "--issuer", caFile, "--responder", down, good.file]);
    expectFailure(result, 1, `certgate: verify ${good.file}: not admitted: ocsp_unavailable (no usable OCSP answer)`);
    expect(result.stderr).toMatch(/certgate: note: .*OCSP: unreachable/);
  });
  it("fails on a certificate that names no responder and no distribution point", async () => {
    const result = await runHere(["verify", "--online", "--issuer", caFile, neither.file]);
    expectFailure(result, 1, /names no OCSP responder and no http CRL distribution point/);
  });
  it("asks for the issuer when FILE holds only the certificate", async () => {
    const result = await runHere(["verify", "--online", good.file]);
    expectFailure(result, 2, /--online needs the issuer/);
  });
  it("refuses --issuer without --online", async () => {
    const result = await runHere(["verify", "--issuer", caFile, good.file]);
    expectFailure(result, 2, /--issuer and --responder go with --online/);
  });
});
