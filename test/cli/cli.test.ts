import { mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCertificate } from "../../src/core/certificate.js";
import { issueDevCertificate, type IssuedCertificate } from "../../src/dev-certificates.js";
import {
  clientEnv,
  createCliFixture,
  expectFailure,
  killAll,
  repo,
  run,
  runHere,
  startServe,
  type Serve,
} from "../support/cli-harness.js";
import type { TestPki } from "../support/harness.js";

let tmp: string;
let pki: TestPki;
let admin: IssuedCertificate;
let reader: IssuedCertificate;
let foreign: IssuedCertificate;
let files: Record<string, string>;

beforeAll(async () => {
  ({ tmp, pki, admin, reader, foreign, files } = await createCliFixture());
});

afterAll(async () => {
  killAll();
  await rm(tmp, { recursive: true, force: true });
});

describe("certgate --help", () => {
  it("prints the help of the tool and of every command", async () => {
    const names = ["serve", "upload", "list", "get", "delete", "verify", "thumbprint"];
    const [tool, ...each] = await Promise.all([runHere(["--help"]), ...names.map((n) => runHere([n, "--help"]))]);
    expect(tool.code).toBe(0);
    for (const name of names) expect(tool.stdout).toContain(`  ${name} `);
    each.forEach((result, i) => {
      expect(result.code, names[i]).toBe(0);
      expect(result.stdout).toMatch(new RegExp(`^Usage: certgate ${names[i]} `));
    });
  });

  it("prints the package version (as a process: the bin entry works)", async () => {
    const result = await run(["--version"]);
    const { version } = JSON.parse(await readFile(join(repo, "package.json"), "utf8")) as { version: string };
    expect(result).toMatchObject({ code: 0, stdout: `certgate ${version}\n` });
  });

  it("refuses an unknown command, an unknown flag and a missing argument with exit code 2", async () => {
    const [command, flag, missing, none] = await Promise.all([
      run(["frobnicate"]),
      runHere(["list", "--frobnicate"]),
      runHere(["get", "--store", "https://localhost:1"]),
      runHere([]),
    ]);
    expectFailure(command, 2, "certgate: unknown command frobnicate (see certgate --help)");
    expectFailure(flag, 2, "certgate: unknown option --frobnicate (see certgate list --help)");
    expectFailure(missing, 2, /^certgate: missing ID/);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^Usage: certgate COMMAND/);
  });
});

describe("certgate thumbprint", () => {
  it("prints the thumbprints, subject and expiry of every certificate, as parseCertificate reads them", async () => {
    const result = await run(["thumbprint", "--json", files["alice.pem"]!, files["bundle.pem"]!, files["alice.der"]!]);
    expect(result.code, result.stderr).toBe(0);
    const alice = parseCertificate(pki.alice.cert);
    const ca = parseCertificate(pki.ca.cert);
    const entry = (file: string, index: number, c: typeof alice) => ({
      file,
      index,
      sha1Thumbprint: c.sha1,
      sha256Thumbprint: c.sha256,
      subject: c.subject,
      issuer: c.issuer,
      serialNumber: c.serialNumber,
      notBefore: c.notBefore.toISOString(),
      notAfter: c.notAfter.toISOString(),
      isCa: c.isCA,
    });
    expect(JSON.parse(result.stdout)).toEqual({
      certificates: [
        entry(files["alice.pem"]!, 0, alice),
        entry(files["bundle.pem"]!, 0, alice),
        entry(files["bundle.pem"]!, 1, ca),
        entry(files["alice.der"]!, 0, alice),
      ],
    });
    expect(alice.sha1).toMatch(/^[0-9A-F]{40}$/);
    // The private key in the bundle is noted, never printed.
    expect(result.stderr).toBe(`certgate: note: ${files["bundle.pem"]}: ignored a private key (never printed)\n`);
    const keyBody = pki.alice.key.split("\n")[1]!;
    expect(result.stdout).not.toContain(keyBody);
  });

  it("prints text the way the portal shows thumbprints", async () => {
    const result = await run(["thumbprint", "alice.pem"], {}, tmp);
    const alice = parseCertificate(pki.alice.cert);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`alice.pem\n  Subject: CN=alice\n`);
    expect(result.stdout).toContain(`  SHA-1:   ${alice.sha1}\n  SHA-256: ${alice.sha256}\n`);
    expect(result.stdout).toContain(`  Expires: ${alice.notAfter.toISOString().slice(0, 19).replace("T", " ")} UTC\n`);
  });

  it("fails on a file with no certificate, a broken file and a missing file", async () => {
    const [key, junk, missing] = await Promise.all([
      run(["thumbprint", "alice-key.pem"], {}, tmp),
      runHere(["thumbprint", "junk.der"], {}, tmp),
      runHere(["thumbprint", "alice.pem", "nothing.pem"], {}, tmp),
    ]);
    expectFailure(key, 1, "certgate: alice-key.pem: no certificate found (only a private key)");
    expectFailure(junk, 1, "certgate: junk.der: not a certificate (neither PEM nor DER)");
    expectFailure(missing, 1, "certgate: nothing.pem: no such file");
    // The file that could be read is still printed.
    expect(missing.stdout).toContain(`SHA-256: ${parseCertificate(pki.alice.cert).sha256}`);
  });
});

describe("certgate serve with upload, list, get, verify and delete", () => {
  let serve: Serve;
  let dataDir: string;
  const as = (who: string) => clientEnv({ files }, who, serve.url);
  const listIds = async () => {
    const result = await runHere(["list", "--json"], as("reader"));
    expect(result.code, result.stderr).toBe(0);
    return (JSON.parse(result.stdout) as { certificates: { certificateId: string }[] }).certificates.map(
      (c) => c.certificateId,
    );
  };

  beforeAll(async () => {
    dataDir = join(tmp, "store");
    const adminSha1 = parseCertificate(admin.cert)
      .sha1.toLowerCase()
      .replace(/(..)(?!$)/g, "$1:");
    // carol is a reader by folder, the reader certificate by thumbprint.
    const carol = await issueDevCertificate(pki.ca, { commonName: "carol", usages: ["client"] });
    await mkdir(join(tmp, "readers"));
    await writeFile(join(tmp, "readers", "carol.pem"), carol.cert);
    await writeFile((files["carol.pem"] = join(tmp, "carol.pem")), carol.cert);
    await writeFile((files["carol-key.pem"] = join(tmp, "carol-key.pem")), carol.key);
    serve = await startServe([
      ...["--data-dir", dataDir],
      ...["--tls-cert", files["server.pem"]!, "--tls-key", files["server-key.pem"]!],
      ...["--client-ca", files["ca.pem"]!],
      ...["--admin", adminSha1, "--admin", parseCertificate(foreign.cert).sha256],
      ...["--reader", parseCertificate(reader.cert).sha256, "--reader-dir", join(tmp, "readers")],
    ]);
  });
  afterAll(() => serve?.stop());

  it("uploads, lists, gets, verifies and deletes a certificate; the store refuses it once deleted", async () => {
    const alice = parseCertificate(pki.alice.cert);
    const flags = ["--store", serve.url, "--cert", "admin.pem", "--key", "admin-key.pem", "--ca", "ca.pem"];
    const upload = await run(
      ["upload", "alice.pem", "--id", "alice", "--label", "team=payments", "--label", "env=test", ...flags],
      {},
      tmp,
    );
    expect(upload.code, upload.stderr).toBe(0);
    expect(upload.stdout).toMatch(
      /^uploaded alice\.pem as alice \(CN=alice, expires \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\)\n$/,
    );
    await stat(join(dataDir, "alice.pem")); // the data folder holds it

    const list = await run(["list"], as("reader"));
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/^ID\s+EXPIRES\s+SUBJECT\nalice\s+\d{4}-.* UTC\s+CN=alice\n$/);
    const get = await run(["get", "alice", "--json"], as("reader"));
    expect(get.code, get.stderr).toBe(0);
    expect(JSON.parse(get.stdout)).toMatchObject({
      certificateId: "alice",
      sha1Thumbprint: alice.sha1,
      sha256Thumbprint: alice.sha256,
      labels: { team: "payments", env: "test" },
      der: Buffer.from(alice.der).toString("base64"),
    });
    const pem = await run(["get", "alice", "--pem"], as("reader"));
    expect(parseCertificate(pem.stdout).sha256).toBe(alice.sha256);

    const [admitted, byThumbprint] = await Promise.all([
      run(["verify", "alice.pem"], as("reader"), tmp),
      run(["verify", "--thumbprint", alice.sha1.toLowerCase()], as("reader")),
    ]);
    expect(admitted).toMatchObject({ code: 0, stdout: "admitted: alice.pem (CN=alice) by stored certificate alice\n" });
    expect(byThumbprint.code, byThumbprint.stderr).toBe(0);

    const del = await run(["delete", "alice"], as("admin"));
    expect(del).toMatchObject({ code: 0, stdout: "deleted alice\n" });
    await expect(stat(join(dataDir, "alice.pem"))).rejects.toThrow();
    const refused = await run(["verify", "alice.pem"], as("reader"), tmp);
    expectFailure(refused, 3, "certgate: verify alice.pem: not admitted: not_allowed (not in the store)");
    expect(await listIds()).toEqual([]);
  }, 60_000);

  it("admits a reader certificate, by thumbprint or from --reader-dir, to read", async () => {
    const [byThumbprint, byFolder] = await Promise.all([run(["list"], as("reader")), runHere(["list"], as("carol"))]);
    expect(byThumbprint.code, byThumbprint.stderr).toBe(0);
    expect(byFolder.code, byFolder.stderr).toBe(0);
  });

  it("refuses a reader certificate, by thumbprint or from --reader-dir, to upload or delete (permission denied)", async () => {
    const [upload, del, byFolder] = await Promise.all([
      run(["upload", files["bob.pem"]!], as("reader")),
      runHere(["delete", "bob"], as("reader")),
      runHere(["upload", files["bob.pem"]!], as("carol")),
    ]);
    expectFailure(upload, 1, /^certgate: upload .*bob\.pem: permission denied: /);
    expectFailure(del, 1, /^certgate: delete bob: permission denied: /);
    expectFailure(byFolder, 1, /^certgate: upload .*bob\.pem: permission denied: /);
    expect(await listIds()).toEqual([]);
  });

  it("refuses an unknown client certificate, and an admin-listed one that does not chain to --client-ca", async () => {
    const [unknown, untrusted] = await Promise.all([
      run(["list"], as("bob")),
      runHere(["upload", files["bob.pem"]!], as("foreign")),
    ]);
    expectFailure(
      unknown,
      1,
      /^certgate: list: the store refused the client certificate \(.*\); check --cert and --key$/,
    );
    expectFailure(untrusted, 1, /^certgate: upload .*bob\.pem: the store refused the client certificate/);
    expect(await listIds()).toEqual([]);
  });

  it("admits an upload under the SHA-256 thumbprint by default", async () => {
    const bob = parseCertificate(pki.bob.cert);
    const upload = await run(["upload", "bob.der"], as("admin"), tmp);
    expect(upload.code, upload.stderr).toBe(0);
    expect(await listIds()).toEqual([bob.sha256]);
    expect((await runHere(["delete", bob.sha256], as("admin"))).code).toBe(0);
  });

  it("refuses an upload that exists already, has a bad id or holds a private key, and keeps nothing of it", async () => {
    expect((await runHere(["upload", "alice.pem", "--id", "taken"], as("admin"), tmp)).code).toBe(0);
    const [again, badId, withKey] = await Promise.all([
      run(["upload", "alice.der", "--id", "taken"], as("admin"), tmp),
      runHere(["upload", "bob.pem", "--id", "../x"], as("admin"), tmp),
      runHere(["upload", "bundle.pem"], as("admin"), tmp),
    ]);
    expectFailure(again, 1, 'certgate: upload alice.der: already exists (certificate_id "taken")');
    expectFailure(badId, 1, /^certgate: upload bob\.pem: invalid certificate id "\.\.\/x"/);
    expectFailure(
      withKey,
      1,
      "certgate: upload bundle.pem: the file holds a private key; upload the certificate alone (certgate never sends private keys)",
    );
    expect(await listIds()).toEqual(["taken"]);
    expect((await readdir(dataDir)).filter((f) => !f.startsWith("."))).toEqual(["taken.pem"]);
    expect((await runHere(["delete", "taken"], as("admin"))).code).toBe(0);
  }, 60_000);

  it("fails with the reason when an id is unknown or the store cannot be reached or trusted", async () => {
    const { CERTGATE_CA: _ca, ...noCa } = as("admin");
    const [get, del, untrusted, unreachable] = await Promise.all([
      run(["get", "nope"], as("reader")),
      runHere(["delete", "nope"], as("admin")),
      run(["list"], noCa),
      runHere(["list", "--store", "https://127.0.0.1:1"], as("reader")),
    ]);
    expectFailure(get, 1, 'certgate: get nope: not found (certificate_id "nope")');
    expectFailure(del, 1, 'certgate: delete nope: not found (certificate_id "nope")');
    expectFailure(
      untrusted,
      1,
      /^certgate: list: cannot trust the TLS certificate of https:\/\/127\.0\.0\.1:\d+ \(.*\): pass --ca/,
    );
    expectFailure(unreachable, 1, /^certgate: list: cannot reach the store at https:\/\/127\.0\.0\.1:1: /);
  });

  it("refuses a wrong command line with exit code 2", async () => {
    const env = as("admin");
    const [noStore, http, label, twoIds, noKey] = await Promise.all([
      run(["list"], { ...env, CERTGATE_STORE: "" }),
      runHere(["list", "--store", "http://127.0.0.1:1"], env),
      runHere(["upload", files["bob.pem"]!, "--label", "team"], env),
      runHere(["upload", files["bob.pem"]!, files["alice.pem"]!, "--id", "x"], env),
      runHere(["list"], { ...env, CERTGATE_KEY: "" }),
    ]);
    expectFailure(noStore, 2, "certgate: missing --store URL (or CERTGATE_STORE) (see certgate list --help)");
    expectFailure(http, 2, /^certgate: --store http:\/\/127\.0\.0\.1:1: expected an https:\/\/ URL/);
    expectFailure(label, 2, "certgate: --label team: expected KEY=VALUE (see certgate upload --help)");
    expectFailure(twoIds, 2, /^certgate: --id names one certificate/);
    expectFailure(noKey, 2, /^certgate: missing --key FILE \(or CERTGATE_KEY\)/);
  });

  it("fails at start-up naming the problem: a port in use, a malformed thumbprint, half the TLS flags", async () => {
    const port = new URL(serve.url).port;
    const [inUse, thumbprint, halfTls] = await Promise.all([
      run([
        "serve",
        "--listen",
        `127.0.0.1:${port}`,
        "--data-dir",
        join(tmp, "second"),
        "--tls-cert",
        files["server.pem"]!,
        "--tls-key",
        files["server-key.pem"]!,
        "--admin",
        parseCertificate(admin.cert).sha1,
      ]),
      runHere(["serve", "--data-dir", join(tmp, "second"), "--admin", "12:34"]),
      runHere(["serve", "--data-dir", join(tmp, "second"), "--tls-cert", files["server.pem"]!]),
    ]);
    expectFailure(
      inUse,
      1,
      `certgate: cannot listen on 127.0.0.1:${port}: address already in use (choose another with --listen)`,
    );
    expectFailure(thumbprint, 2, /^certgate: --admin: invalid thumbprint "12:34": 4 hex digits/);
    expectFailure(halfTls, 2, "certgate: --tls-cert needs --tls-key (see certgate serve --help)");
  }, 60_000);
});
