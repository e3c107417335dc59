// certgate upload and delete as a new user meets them: PKCS#12 and PKCS#7
// files, one certificate under two ids, an expired certificate, negative
// durations.
import { execFile, execFileSync, spawn } from "node:child_process";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPkcs12 } from "../../src/cli/dev-p12.js";
import { parseCertificate } from "../../src/core/certificate.js";
import { issueDevCertificate } from "../../src/dev-certificates.js";
import { waitFor } from "../support/harness.js";
import {
  cliArgs,
  clientEnv,
  createCliFixture,
  expectFailure,
  killAll,
  run,
  runHere,
  serveAccessArgs,
  startServe,
  type CliFixture,
  type Serve,
} from "../support/cli-harness.js";

let fx: CliFixture;
let serve: Serve;
const as = (who: string) => clientEnv(fx, who, serve.url);
const path = (name: string) => join(fx.tmp, name);

function openssl(args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile("openssl", args, (error, _stdout, stderr) => (error ? reject(new Error(stderr)) : resolve())),
  );
}

/** The notes (certgate: note: ...) on standard error. */
const notes = (stderr: string) => stderr.split("\n").filter((l) => l.startsWith("certgate: note: "));

beforeAll(async () => {
  fx = await createCliFixture();
  serve = await startServe(["--data-dir", path("store"), ...serveAccessArgs(fx), "--no-console"]);
  // PKCS#12 as certgate writes it (AES, PBKDF2) and as OpenSSL 3 exports
  // a certificate with its key and chain; PKCS#7 bundles as openssl writes them.
  await writeFile(
    path("alice.p12"),
    await createPkcs12({ certificate: fx.pki.alice.cert, key: fx.pki.alice.key, password: "s3cret" }),
  );
  await writeFile(path("password.txt"), "s3cret\n");
  await writeFile(path("wrong.txt"), "guess\n");
  await openssl([
    "pkcs12",
    "-export",
    "-in",
    fx.files["bob.pem"]!,
    "-inkey",
    fx.files["bob-key.pem"]!,
    "-certfile",
    fx.files["ca.pem"]!,
    "-passout",
    "pass:",
    "-out",
    path("bob-chain.pfx"),
  ]);
  for (const [name, form] of [
    ["bob.p7b", "PEM"],
    ["bob-der.p7b", "DER"],
  ] as const) {
    await openssl([
      "crl2pkcs7",
      "-nocrl",
      "-certfile",
      fx.files["bob.pem"]!,
      "-certfile",
      fx.files["ca.pem"]!,
      "-outform",
      form,
      "-out",
      path(name),
    ]);
  }
});

afterAll(async () => {
  await serve?.stop();
  killAll();
  if (fx !== undefined) await rm(fx.tmp, { recursive: true, force: true });
});

describe("certgate upload of a PKCS#12 file", () => {
  it("uploads its certificate with --password-file, ignoring the key with a note", async () => {
    const result = await run(
      ["upload", path("alice.p12"), "--id", "alice-p12", "--password-file", path("password.txt")],
      as("admin"),
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^uploaded .*alice\.p12 as alice-p12 \(CN=alice/);
    expect(notes(result.stderr)).toEqual([
      `certgate: note: ${path("alice.p12")}: ignored a private key (never decrypted)`,
    ]);
    const got = await runHere(["get", "alice-p12", "--json"], as("reader"));
    expect(got.stdout).toContain(parseCertificate(fx.pki.alice.cert).sha256);
  });

  it("refuses a wrong password, and asks for one when no terminal can be asked", async () => {
    const [wrong, none] = await Promise.all([
      runHere(["upload", path("alice.p12"), "--password-file", path("wrong.txt")], as("admin")),
      runHere(["upload", path("alice.p12")], as("admin")),
    ]);
    expectFailure(wrong, 1, `certgate: upload ${path("alice.p12")}: wrong password`);
    expectFailure(
      none,
      1,
      `certgate: upload ${path("alice.p12")}: a PKCS#12 file needs its password: give --password-file FILE, or run in a terminal to be asked`,
    );
  });

  it("uploads the end-entity certificate of OpenSSL's .pfx with its chain, leaving the CA out", async () => {
    const result = await run(["upload", path("bob-chain.pfx"), "--id", "bob-pfx"], as("admin"));
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/as bob-pfx \(CN=bob/);
    expect(notes(result.stderr)).toContain(
      `certgate: note: ${path("bob-chain.pfx")}: left out 1 CA certificate of the chain`,
    );
  });
});

const hasScript = (() => {
  try {
    execFileSync("script", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

describe("certgate thumbprint and verify of a PKCS#12 file", () => {
  it("reads it with --password-file", async () => {
    const result = await runHere(["thumbprint", path("alice.p12"), "--password-file", path("password.txt")]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(parseCertificate(fx.pki.alice.cert).sha256);
  });

  it.skipIf(!hasScript)("asks for the password on a terminal, without echoing it", async () => {
    // util-linux script(1) gives certgate a terminal.
    const command = [process.execPath, ...cliArgs, "thumbprint", path("alice.p12")].map((a) => `'${a}'`).join(" ");
    const child = spawn("script", ["-qec", command, "/dev/null"], { stdio: ["pipe", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    const exit = new Promise<number | null>((resolve) => child.on("close", resolve));
    try {
      await waitFor(() => output.includes(`Password of ${path("alice.p12")}: `), "the password prompt");
      child.stdin.write("s3cret\r");
      expect(await exit).toBe(0);
    } finally {
      child.kill();
    }
    expect(output).toContain(parseCertificate(fx.pki.alice.cert).sha256);
    expect(output).not.toContain("s3cret");
  });

  it("verifies its end-entity certificate, not the CA of its chain", async () => {
    const result = await runHere(["verify", path("bob-chain.pfx")], as("reader"));
    expect(result.stdout).toMatch(/CN=bob/);
    expect(result.stderr).toContain("verifying the end-entity certificate of 2 certificates");
  });
});

describe("certgate upload and thumbprint of a PKCS#7 bundle", () => {
  it.each(["bob.p7b", "bob-der.p7b"])("reads %s (PEM or DER)", async (name) => {
    const bob = parseCertificate(fx.pki.bob.cert);
    const thumbprint = await runHere(["thumbprint", "--json", path(name)]);
    expect(thumbprint.code, thumbprint.stderr).toBe(0);
    const listed = JSON.parse(thumbprint.stdout).certificates.map(
      (c: { sha256Thumbprint: string }) => c.sha256Thumbprint,
    );
    expect(listed).toEqual(expect.arrayContaining([bob.sha256, parseCertificate(fx.pki.ca.cert).sha256]));
    const id = name.replace(/\W/g, "-");
    const upload = await runHere(["upload", path(name), "--id", id, "--json"], as("admin"));
    expect(upload.code, upload.stderr).toBe(0);
    expect(JSON.parse(upload.stdout).certificates.map((c: { sha256Thumbprint: string }) => c.sha256Thumbprint)).toEqual(
      [bob.sha256],
    );
  });

  it("refuses a bundle of CA certificates only", async () => {
    await openssl(["crl2pkcs7", "-nocrl", "-certfile", fx.files["ca.pem"]!, "-out", path("ca.p7b")]);
    const result = await runHere(["upload", path("ca.p7b")], as("admin"));
    expectFailure(result, 1, /holds only CA certificates/);
  });
});

describe("certgate upload and delete of one certificate under two ids", () => {
  it("notes the first id at the second upload, and at delete that it is still admitted", async () => {
    const carol = await issueDevCertificate(fx.pki.ca, { commonName: "carol", usages: ["client"] });
    await writeFile(path("carol.pem"), carol.cert);
    const first = await runHere(["upload", path("carol.pem"), "--id", "carol-1"], as("admin"));
    expect(first.code, first.stderr).toBe(0);
    expect(notes(first.stderr)).toEqual([]);
    const second = await runHere(["upload", path("carol.pem"), "--id", "carol-2"], as("admin"));
    expect(second.code, second.stderr).toBe(0);
    expect(notes(second.stderr)).toEqual([
      `certgate: note: ${path("carol.pem")}: the same certificate is already stored as carol-1; it stays admitted until both ids are deleted`,
    ]);
    const deleteOne = await runHere(["delete", "carol-2"], as("admin"));
    expect(deleteOne.stdout).toBe("deleted carol-2; the same certificate is still admitted as carol-1\n");
    const deleteOther = await runHere(["delete", "carol-1"], as("admin"));
    expect(deleteOther.stdout).toBe("deleted carol-1\n");
    const verify = await runHere(["verify", path("carol.pem")], as("reader"));
    expect(verify.code).toBe(3);
  });
});

describe("certgate upload of an expired certificate", () => {
  it("uploads it with a note, not an error", async () => {
    const old = await issueDevCertificate(fx.pki.ca, {
      commonName: "old",
      usages: ["client"],
      notBefore: new Date(Date.now() - 400 * 86_400_000),
      notAfter: new Date(Date.now() - 30 * 86_400_000),
    });
    await writeFile(path("old.pem"), old.cert);
    const result = await runHere(["upload", path("old.pem")], as("admin"));
    expect(result.code, result.stderr).toBe(0);
    expect(notes(result.stderr)).toEqual([
      expect.stringMatching(
        /^certgate: note: .*old\.pem: expired on \d{4}-\d\d-\d\d \S+ UTC; uploaded anyway, but API servers refuse an expired certificate$/,
      ),
    ]);
  });

  it("uploads a valid certificate without a note", async () => {
    const dave = await issueDevCertificate(fx.pki.ca, { commonName: "dave", usages: ["client"] });
    await writeFile(path("dave.pem"), dave.cert);
    const result = await runHere(["upload", path("dave.pem")], as("admin"));
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toBe("");
  });
});
describe("negative values on the command line", () => {
  it("says a duration cannot be negative, pointing at the help, not Node's 'ambiguous'", async () => {
    const result = await runHere(["list", "--expiring-within", "-5d"], { CERTGATE_STORE: "https://127.0.0.1:1" });
    expectFailure(
      result,
      2,
      /^certgate: invalid --expiring-within "-5d": a duration cannot be negative; give a number and a unit.* \(see certgate list --help\)$/,
    );
  });

  it("says how to give a value that starts with a dash", async () => {
    const result = await runHere(["upload", "x.pem", "--id", "-x"], { CERTGATE_STORE: "https://127.0.0.1:1" });
    expectFailure(
      result,
      2,
      'certgate: option --id needs a value; write --id=VALUE for a value that starts with "-" (see certgate upload --help)',
    );
  });
});
