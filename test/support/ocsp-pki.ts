// An openssl CA that issues with `openssl ca` (so its index.txt knows every
// certificate) and answers OCSP with `openssl ocsp` on loopback: the
// responder certgate's online revocation is tested against.
import { type ChildProcess, spawn } from "node:child_process";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { freePort } from "./free-port.js";
import { makeOpensslCa, type OpensslIssued } from "./openssl-ca.js";

/** A certificate the CA issued, PEM, and where its file is. */
export type OcspIssued = OpensslIssued;

/**
 * Who signs the responses of a responder: the CA, a delegated responder
 * certificate (OCSPSigning), a key of the same name that the CA never
 * signed, or a client certificate of the CA (not allowed to sign OCSP).
 */
export type ResponderSigner = "ca" | "delegated" | "unrelated" | "client";

/** A running `openssl ocsp`. */
export interface OcspResponder {
  url: string;
  port: number;
  stop(): Promise<void>;
}

/** An openssl CA in a temporary folder. */
export interface OcspPki {
  dir: string;
  /** The CA certificate, PEM. */
  cert: string;
  /**
   * Issues a client certificate naming `ocspUrl` (AIA) and `crlUrl` (CRL
   * distribution point) if given. `recorded: false` issues it outside the
   * CA database, so the responder answers `unknown`.
   */
  issue(name: string, options?: { ocspUrl?: string; crlUrl?: string; recorded?: boolean }): Promise<OcspIssued>;
  revoke(issued: OcspIssued): void;
  /** `openssl ca -gencrl`, DER, due again in `hours`; signed by the CA, or by the unrelated key (same name). */
  crl(hours?: number, signer?: "ca" | "unrelated"): Promise<Uint8Array>;
  /**
   * Starts `openssl ocsp` on `port` (by default, a free one), signing as
   * `signer`; `minutes` sets nextUpdate (by default, 10).
   */
  responder(signer: ResponderSigner, options?: { port?: number; minutes?: number }): Promise<OcspResponder>;
  remove(): Promise<void>;
}

/** createOcspPki makes an EC P-256 CA, a delegated OCSP responder certificate and an unrelated one. */
export async function createOcspPki(): Promise<OcspPki> {
  const ca = await makeOpensslCa({
    folder: "ocsp",
    name: "openssl OCSP test CA",
    config: ["serial = serial", "unique_subject = no"],
  });
  const { dir, openssl, ec } = ca;
  const responders = new Set<ChildProcess>();
  await writeFile(join(dir, "serial"), "1000\n");
  let issued = 0;
  const issue = async (name: string, extensions: string, recorded: boolean): Promise<OcspIssued> => {
    await ca.request(name, extensions);
    if (recorded) {
      openssl(
        "ca",
        "-batch",
        "-config",
        "ca.cnf",
        "-notext",
        "-days",
        "1",
        "-in",
        `${name}.csr`,
        "-extfile",
        `${name}.ext`,
        "-out",
        `${name}.pem`,
      );
    } else {
      ca.sign(name, String(0x7f0000 + issued++));
    }
    return ca.issued(name);
  };
  await issue("responder", "extendedKeyUsage=OCSPSigning\nnoCheck=ignored\nbasicConstraints=CA:FALSE\n", true);
  await issue("impostor", "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n", true);
  openssl(
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "unrelated-key.pem",
    "-out",
    "unrelated.pem",
    "-subj",
    "/CN=openssl OCSP test CA",
    "-days",
    "2",
  );
  const signers: Record<ResponderSigner, [string, string]> = {
    ca: ["ca.pem", "ca-key.pem"],
    delegated: ["responder.pem", "responder-key.pem"],
    unrelated: ["unrelated.pem", "unrelated-key.pem"],
    client: ["impostor.pem", "impostor-key.pem"],
  };
  return {
    dir,
    cert: ca.cert,
    issue(name, options = {}) {
      const lines = ["extendedKeyUsage=clientAuth", "basicConstraints=CA:FALSE"];
      if (options.ocspUrl !== undefined) lines.push(`authorityInfoAccess=OCSP;URI:${options.ocspUrl}`);
      if (options.crlUrl !== undefined) lines.push(`crlDistributionPoints=URI:${options.crlUrl}`);
      return issue(name, `${lines.join("\n")}\n`, options.recorded ?? true);
    },
    revoke: ca.revoke,
    async crl(hours = 24, signer = "ca") {
      const as = signer === "ca" ? [] : ["-cert", "unrelated.pem", "-keyfile", "unrelated-key.pem"];
      openssl("ca", "-config", "ca.cnf", "-gencrl", ...as, "-crlhours", String(hours), "-out", "crl.pem");
      openssl("crl", "-in", "crl.pem", "-outform", "DER", "-out", "crl.der");
      return new Uint8Array(await readFile(join(dir, "crl.der")));
    },
    async responder(signer, options = {}) {
      const port = options.port ?? (await freePort());
      const minutes = options.minutes ?? 10;
      const [rsigner, rkey] = signers[signer];
      const child = spawn(
        "openssl",
        [
          "ocsp",
          "-index",
          "index.txt",
          "-port",
          String(port),
          "-rsigner",
          rsigner,
          "-rkey",
          rkey,
          "-CA",
          "ca.pem",
          "-nmin",
          String(minutes),
          "-rmd",
          "sha256",
          "-ignore_err",
        ],
        { cwd: dir, stdio: ["ignore", "pipe", "pipe"] },
      );
      responders.add(child);
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      // It prints "ACCEPT ..." once it listens.
      await new Promise<void>((resolve, reject) => {
        let output = "";
        const onData = (chunk: Buffer) => {
          output += chunk.toString();
          if (output.includes("ACCEPT")) resolve();
        };
        child.stdout?.on("data", onData);
        child.stderr?.on("data", onData);
        child.once("exit", (code) => reject(new Error(`openssl ocsp exited (${code}): ${output}`)));
      });
      return {
        port,
        url: `http://127.0.0.1:${port}/`,
        async stop() {
          if (child.exitCode === null && child.signalCode === null) child.kill();
          await exited;
          responders.delete(child);
        },
      };
    },
    async remove() {
      for (const child of responders) child.kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
