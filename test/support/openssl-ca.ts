// A CA made with the openssl command line (not with certgate's own code),
// for tests that must not share certgate's idea of the encodings.
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A client certificate openssl issued, PEM. */
export interface OpensslIssued {
  cert: string;
  key: string;
  /** Where the certificate file is. */
  file: string;
}

/** An openssl CA in a temporary folder. */
export interface OpensslCa {
  dir: string;
  cert: string;
  /** Issues a client certificate with the given serial (openssl's `-set_serial`, such as `-0x7FFF`). */
  issue(name: string, serial: string): Promise<OpensslIssued>;
  /** Revokes with `openssl ca -revoke`. */
  revoke(issued: OpensslIssued): void;
  /** `openssl ca -gencrl`, PEM. */
  crl(): Promise<string>;
  remove(): Promise<void>;
}

/** createOpensslCa makes an EC P-256 CA with `openssl req -x509`. */
export async function createOpensslCa(): Promise<OpensslCa> {
  const dir = await mkdtemp(join(tmpdir(), "certgate-openssl-"));
  const openssl = (...args: string[]) => {
    try {
      return execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    } catch (error) {
      const e = error as NodeJS.ErrnoException & { stderr?: Buffer };
      if (e.code === "ENOENT") throw new Error("these tests need the openssl command line (apt-get install openssl)");
      throw new Error(`openssl ${args.join(" ")}: ${e.stderr?.toString() ?? e.message}`);
    }
  };
  await writeFile(
    join(dir, "ca.cnf"),
    "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\ncertificate = ca.pem\n" +
      "private_key = ca-key.pem\ndefault_md = sha256\ndefault_crl_days = 7\npolicy = p\n[p]\ncommonName = supplied\n",
  );
  await writeFile(join(dir, "index.txt"), "");
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  openssl(
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "ca-key.pem",
    "-out",
    "ca.pem",
    "-subj",
    "/CN=openssl test CA",
    "-days",
    "2",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  );
  return {
    dir,
    cert: await readFile(join(dir, "ca.pem"), "utf8"),
    async issue(name, serial) {
      openssl("req", "-new", ...ec, "-keyout", `${name}-key.pem`, "-out", `${name}.csr`, "-subj", `/CN=${name}`);
      await writeFile(join(dir, `${name}.ext`), "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n");
      openssl(
        "x509",
        "-req",
        "-in",
        `${name}.csr`,
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca-key.pem",
        "-set_serial",
        serial,
        "-days",
        "1",
        "-extfile",
        `${name}.ext`,
        "-out",
        `${name}.pem`,
      );
      const file = join(dir, `${name}.pem`);
      return { file, cert: await readFile(file, "utf8"), key: await readFile(join(dir, `${name}-key.pem`), "utf8") };
    },
    revoke(issued) {
      openssl("ca", "-config", "ca.cnf", "-revoke", issued.file);
    },
    async crl() {
      openssl("ca", "-config", "ca.cnf", "-gencrl", "-out", "crl.pem");
      return readFile(join(dir, "crl.pem"), "utf8");
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
