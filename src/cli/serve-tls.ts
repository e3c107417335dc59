import { createSecureContext } from "node:tls";
import { readTextFile, tlsConfigReason } from "./certificate-files.js";
import { CliError } from "./common.js";
import { ensureDevPki, type DevPki } from "./dev-pki.js";

/**
 * ServeTls is the server's TLS material: certificate and key in PEM, and
 * the CA bundle of `--client-ca` if given.
 */
export interface ServeTls {
  readonly cert: string;
  readonly key: string;
  readonly clientCa?: string;
}

/**
 * ServeTlsOptions is what `readServeTls` needs of `certgate serve`'s flags.
 */
export interface ServeTlsOptions {
  /** Whether serve makes its own development PKI (no `--tls-cert`). */
  readonly devMode: boolean;
  /** The data folder, which holds the development PKI under `dev/`. */
  readonly dataDir: string;
  /** Whether this process alone creates the development PKI (false for replicas on one database). */
  readonly exclusive: boolean;
  readonly tlsCert: string | undefined;
  readonly tlsKey: string | undefined;
  readonly clientCa: string | undefined;
  readonly cwd: string;
}

/**
 * readServeTls returns `certgate serve`'s TLS material: the development
 * PKI's server certificate (made on first use) in development mode, else
 * the files of `--tls-cert`, `--tls-key` and `--client-ca`, checked by
 * Node (the PEM, and that the key belongs to the certificate). A problem is
 * a `CliError` naming the flags.
 */
export async function readServeTls(options: ServeTlsOptions): Promise<{ tls: ServeTls; dev: DevPki | undefined }> {
  const { tlsCert, tlsKey, clientCa, cwd } = options;
  if (options.devMode) {
    const dev = await ensureDevPki(options.dataDir, { exclusive: options.exclusive });
    return { tls: { cert: dev.pem.serverCert, key: dev.pem.serverKey }, dev };
  }
  const tls: ServeTls = {
    cert: await readTextFile("--tls-cert", tlsCert!, cwd),
    key: await readTextFile("--tls-key", tlsKey!, cwd),
    ...(clientCa === undefined ? {} : { clientCa: await readTextFile("--client-ca", clientCa, cwd) }),
  };
  try {
    // Node checks the PEM and that the key belongs to the certificate.
    createSecureContext({ cert: tls.cert, key: tls.key });
  } catch (error) {
    throw new CliError(`--tls-cert ${tlsCert} / --tls-key ${tlsKey}: ${tlsConfigReason(error)}`, undefined, {
      cause: error,
    });
  }
  return { tls, dev: undefined };
}
