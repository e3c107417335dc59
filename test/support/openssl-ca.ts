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

/** Where an openssl CA is made and how (see `makeOpensslCa`). */
export interface OpensslCaSetup {
  /** The temporary folder's prefix, after "certgate-". */
  readonly folder: string;
  /** The CA's common name. */
  readonly name: string;
  /** Lines of the `[d]` section of ca.cnf besides the CA's files, digest and CRL days. */
  readonly config?: readonly string[];
}

/** An openssl CA being made: its folder, the command line run there, and the steps both CAs take. */
export interface OpensslCaFolder {
  readonly dir: string;
  /** The CA certificate, PEM. */
  readonly cert: string;
  /** openssl runs the openssl command line in `dir`, naming the command and openssl's message when it fails. */
  openssl(...args: string[]): Buffer;
  /** The arguments of `openssl req` for a new EC P-256 key, unencrypted. */
  readonly ec: readonly string[];
  /** request writes `name`-key.pem, `name`.csr for CN=`name` and `name`.ext holding `extensions`. */
  request(name: string, extensions: string): Promise<void>;
  /** sign issues `name`.pem from its request with `openssl x509 -req`, outside the CA database. */
  sign(name: string, serial: string): void;
  /** issued reads `name`.pem and its key. */
  issued(name: string): Promise<OpensslIssued>;
  /** Revokes with `openssl ca -revoke`. */
  revoke(issued: OpensslIssued): void;
}

/**
 * makeOpensslCa makes an EC P-256 CA with `openssl req -x509` in a new
 * temporary folder, with a ca.cnf and an empty index.txt for `openssl ca`.
 */
export async function makeOpensslCa(setup: OpensslCaSetup): Promise<OpensslCaFolder> {
  const dir = await mkdtemp(join(tmpdir(), `certgate-${setup.folder}-`));
  const openssl = (...args: string[]) => {
    try {
      return execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    } catch (error) {
      const e = error as NodeJS.ErrnoException & { stderr?: Buffer };
      if (e.code === "ENOENT") throw new Error("these tests need the openssl command line (apt-get install openssl)");
      throw new Error(`openssl ${args.join(" ")}: ${e.stderr?.toString() ?? e.message}`);
    }
  };
  const config = ["database = index.txt", "new_certs_dir = .", "certificate = ca.pem", "private_key = ca-key.pem"];
  const policy = ["default_md = sha256", "default_crl_days = 7", ...(setup.config ?? []), "policy = p"];
  await writeFile(
    join(dir, "ca.cnf"),
    `[ca]\ndefault_ca = d\n[d]\n${[...config, ...policy].join("\n")}\n[p]\ncommonName = supplied\n`,
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
    `/CN=${setup.name}`,
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
    openssl,
    ec,
    async request(name, extensions) {
      openssl("req", "-new", ...ec, "-keyout", `${name}-key.pem`, "-out", `${name}.csr`, "-subj", `/CN=${name}`);
      await writeFile(join(dir, `${name}.ext`), extensions);
    },
    sign(name, serial) {
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
    },
    async issued(name) {
      const file = join(dir, `${name}.pem`);
      return { file, cert: await readFile(file, "utf8"), key: await readFile(join(dir, `${name}-key.pem`), "utf8") };
    },
    revoke(issued) {
      openssl("ca", "-config", "ca.cnf", "-revoke", issued.file);
    },
  };
}

/** createOpensslCa makes an EC P-256 CA with `openssl req -x509`. */
export async function createOpensslCa(): Promise<OpensslCa> {
  const ca = await makeOpensslCa({ folder: "openssl", name: "openssl test CA" });
  const { dir, openssl } = ca;
  return {
    dir,
    cert: ca.cert,
    async issue(name, serial) {
      await ca.request(name, "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n");
      ca.sign(name, serial);
      return ca.issued(name);
    },
    revoke: ca.revoke,
    async crl() {
      openssl("ca", "-config", "ca.cnf", "-gencrl", "-out", "crl.pem");
      return readFile(join(dir, "crl.pem"), "utf8");
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
