import { randomBytes } from "node:crypto";
import { mkdir, open, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { parseCertificate, type Certificate } from "../core/certificate.js";
import { createDevCa, issueDevCertificate, type IssuedCertificate } from "../dev-certificates.js";
import { CliError, errorMessage } from "./common.js";
import { formatTime } from "./format.js";

/**
 * DevPkiFiles names the certificate and key files of one development
 * identity.
 */
export interface DevPkiFiles {
  /** The certificate, PEM. */
  readonly cert: string;
  /** The private key, PEM, mode 0600. */
  readonly key: string;
}

/**
 * DevPki is the development-mode PKI of `certgate serve`: a CA, a server
 * certificate for localhost, and client certificates for an admin, a reader
 * and an example API client, kept under `DIR/dev/`.
 */
export interface DevPki {
  /** The folder that holds the files. */
  readonly dir: string;
  /** Whether this start created the files (false: reused). */
  readonly created: boolean;
  /** The CA certificate that issued all the others (its key is not kept). */
  readonly ca: string;
  /** The server certificate, for localhost, 127.0.0.1 and ::1. */
  readonly server: DevPkiFiles;
  /** A client certificate on the service's admin list. */
  readonly admin: DevPkiFiles;
  /** A client certificate on the service's reader list. */
  readonly reader: DevPkiFiles;
  /** An API client certificate to upload in the walkthrough. */
  readonly client: DevPkiFiles;
  /** The PEM contents the server needs. */
  readonly pem: { readonly ca: string; readonly serverCert: string; readonly serverKey: string };
  /** The parsed admin, reader and client certificates. */
  readonly certificates: {
    readonly admin: Certificate;
    readonly reader: Certificate;
    readonly client: Certificate;
  };
}

const identities = ["server", "admin", "reader", "client"] as const;

function layout(dir: string) {
  const files = (name: string): DevPkiFiles => ({ cert: join(dir, `${name}.pem`), key: join(dir, `${name}-key.pem`) });
  return {
    ca: join(dir, "ca.pem"),
    server: files("server"),
    admin: files("admin"),
    reader: files("reader"),
    client: files("client"),
  };
}

/**
 * ensureDevPki returns the development PKI in `dataDir/dev`, creating it on
 * the first start. It is created in a temporary folder and renamed into
 * place, so a crash never leaves a half-made PKI behind, and processes
 * starting at once (replicas on one database share the folder) each make
 * one and all use the first renamed into place; a broken or expired one is
 * reported with the fix (delete the folder). `exclusive`: this process
 * holds the data folder's lock, so every staging folder is a crashed
 * start's; by default only those older than 10 minutes are taken as such.
 */
export async function ensureDevPki(dataDir: string, options: { exclusive?: boolean } = {}): Promise<DevPki> {
  const dir = join(dataDir, "dev");
  let created = false;
  if (!(await exists(join(dir, "ca.pem")))) {
    await removeLeftovers(dataDir, options.exclusive === true);
    const staging = join(dataDir, `.dev-${randomBytes(6).toString("hex")}.tmp`);
    await mkdir(staging, { mode: 0o700 });
    try {
      await generate(staging);
      await rename(staging, dir);
      created = true;
    } catch (error) {
      await rm(staging, { recursive: true, force: true });
      // Another certgate created it first: use that one.
      if (!(await exists(join(dir, "ca.pem")))) {
        throw new CliError(`cannot create development certificates in ${dir}: ${errorMessage(error)}`, undefined, {
          cause: error,
        });
      }
    }
  }
  return load(dir, created);
}

async function generate(dir: string): Promise<void> {
  const files = layout(dir);
  const ca = await createDevCa({ commonName: "certgate development CA" });
  const issued: Record<(typeof identities)[number], IssuedCertificate> = {
    server: await issueDevCertificate(ca, {
      commonName: "localhost",
      dnsNames: ["localhost"],
      ipAddresses: ["127.0.0.1", "::1"],
      usages: ["server"],
    }),
    admin: await issueDevCertificate(ca, { commonName: "certgate admin", usages: ["client"] }),
    reader: await issueDevCertificate(ca, { commonName: "certgate reader", usages: ["client"] }),
    client: await issueDevCertificate(ca, { commonName: "example API client", usages: ["client"] }),
  };
  await writeDurably(files.ca, ca.cert, 0o644);
  for (const name of identities) {
    await writeDurably(files[name].key, issued[name].key, 0o600);
    await writeDurably(files[name].cert, issued[name].cert, 0o644);
  }
  // The CA key is not kept: nothing issues more development certificates,
  // and a key that does not exist cannot leak.
}

async function load(dir: string, created: boolean): Promise<DevPki> {
  const files = layout(dir);
  const read = async (path: string) => {
    try {
      return await readFile(path, "utf8");
    } catch (error) {
      throw new CliError(
        `development certificates in ${dir} are incomplete (${path}: ${errorMessage(error)}); ` +
          "delete the folder to create new ones",
      );
    }
  };
  const parse = (path: string, text: string): Certificate => {
    let certificate: Certificate;
    try {
      certificate = parseCertificate(text);
    } catch (error) {
      throw new CliError(`${path}: not a certificate (${errorMessage(error)}); delete ${dir} to create new ones`);
    }
    if (Date.now() > certificate.notAfter.getTime()) {
      throw new CliError(
        `${path} expired on ${formatTime(certificate.notAfter)}; delete ${dir} to create new development certificates`,
      );
    }
    return certificate;
  };
  const ca = await read(files.ca);
  parse(files.ca, ca);
  const serverCert = await read(files.server.cert);
  parse(files.server.cert, serverCert);
  const serverKey = await read(files.server.key);
  const certificates = {
    admin: parse(files.admin.cert, await read(files.admin.cert)),
    reader: parse(files.reader.cert, await read(files.reader.cert)),
    client: parse(files.client.cert, await read(files.client.cert)),
  };
  return { dir, created, ...files, pem: { ca, serverCert, serverKey }, certificates };
}

async function writeDurably(path: string, text: string, mode: number): Promise<void> {
  const handle = await open(path, "wx", mode);
  try {
    await handle.writeFile(text);
    // The umask may have narrowed the mode, never widened it; chmod makes
    // the key files exactly 0600 whatever the umask.
    await handle.chmod(mode);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

// How old a staging folder must be to count as a crashed start's: making
// the PKI takes well under a second, and replicas on one database share the
// folder without a lock, so a younger one may be another process's work in
// progress.
const leftoverAgeMs = 10 * 60 * 1000;

// Staging folders of a start that crashed before the rename.
async function removeLeftovers(dataDir: string, exclusive: boolean): Promise<void> {
  for (const name of await readdir(dataDir)) {
    if (!/^\.dev-[0-9a-f]{12}\.tmp$/.test(name)) continue;
    const path = join(dataDir, name);
    const info = await stat(path).catch(() => undefined);
    if (info !== undefined && (exclusive || Date.now() - info.mtimeMs > leftoverAgeMs)) {
      await rm(path, { recursive: true, force: true });
    }
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if ((error as { code?: unknown }).code === "ENOENT") {
      return false;
    }
    throw new CliError(`${path}: ${errorMessage(error)}`);
  }
}
