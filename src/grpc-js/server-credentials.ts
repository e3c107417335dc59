import { createSecureContext } from "node:tls";
import { ServerCredentials } from "@grpc/grpc-js";
import { decodePemOrDer } from "../core/pem-der.js";
import { followTlsFiles, type ServerCredentialsFilesOptions } from "./tls-files-credentials.js";

/**
 * ServerCredentialsOptions configures `createServerCredentials`. Each value
 * is PEM, as a string or a Buffer (or an array of them, as Node's TLS
 * options take).
 */
export interface ServerCredentialsOptions {
  /** The server's certificate chain. Required. */
  cert: string | Buffer | readonly (string | Buffer)[];
  /** The server's private key. Required. */
  key: string | Buffer | readonly (string | Buffer)[];
  /**
   * CA certificates (PEM) that Node's TLS layer verifies client chains
   * against, which only sets the `authorized` fact that `validateTrust:
   * "tls"` reads: an unknown or self-signed client certificate still
   * completes the handshake, and certgate decides. Input that holds no
   * certificate, or anything else, throws. By default, none: certgate gives
   * Node an empty CA list, so no client chain is `authorized` (Node's own
   * default, its bundled public roots and `NODE_EXTRA_CA_CERTS`, is not
   * used), and `validateTrust: "tls"` refuses every call. To trust Node's
   * roots, say so: `ca: tls.rootCertificates`.
   */
  ca?: string | Buffer | readonly (string | Buffer)[];
}

// The options grpc-js hands to http2.createSecureServer: it spreads the
// constructor options into them. certgate asks every client for a
// certificate and refuses none in the handshake: the interceptor is the gate.
const constructorOptions = { requestCert: true, rejectUnauthorized: false } as const;

class CertgateServerCredentials extends ServerCredentials {
  override _equals(other: ServerCredentials): boolean {
    return other === this;
  }
}

/**
 * createServerCredentials returns grpc-js `ServerCredentials` for TLS that
 * ask every client for a certificate without refusing the handshake over an
 * unknown or self-signed one (grpc-js's own `ServerCredentials.createSsl`
 * can either not ask, or refuse every certificate its `rootCerts` do not
 * verify). Pair them with `createClientCertServerInterceptor`, which refuses
 * the calls. It throws at start-up for a missing or unusable certificate,
 * key or CA, and when the installed grpc-js no longer passes these options
 * to its TLS server.
 *
 * @example
 * const server = new grpc.Server({ interceptors: [createClientCertServerInterceptor({ store })] });
 * server.bindAsync("0.0.0.0:8443", createServerCredentials({ cert, key }), callback);
 *
 * With `{ files }` (see `createTlsFiles`) the servers bound with them follow
 * the files: new handshakes get each new set, open connections keep theirs.
 */
export function createServerCredentials(
  options: ServerCredentialsOptions | ServerCredentialsFilesOptions,
): ServerCredentials {
  if (typeof options === "object" && options !== null && "files" in options) {
    return followTlsFiles(createServerCredentials(options.files.secureContextOptions()), options.files);
  }
  if (typeof options !== "object" || options === null) {
    throw new TypeError("certgate: createServerCredentials() needs options: { cert, key, ca? }");
  }
  for (const name of ["cert", "key", "ca"] as const) {
    const value = options[name];
    if (value === undefined && name === "ca") continue;
    const values = Array.isArray(value) ? value : [value];
    if (values.length === 0 || !values.every((v) => typeof v === "string" || Buffer.isBuffer(v))) {
      throw new TypeError(`certgate: createServerCredentials() options.${name} must be PEM, as a string or a Buffer`);
    }
  }
  if (options.ca !== undefined) assertCaCertificates(options.ca);
  const contextOptions = {
    cert: options.cert as string | Buffer | (string | Buffer)[],
    key: options.key as string | Buffer | (string | Buffer)[],
    // Without a ca option Node would trust its bundled public roots and
    // NODE_EXTRA_CA_CERTS for client chains: an empty list trusts none.
    ca: options.ca === undefined ? [] : (options.ca as string | Buffer | (string | Buffer)[]),
  };
  try {
    // The same check Node makes when the server starts, made now, so that a
    // key that does not match its certificate fails here, naming it.
    createSecureContext(contextOptions);
  } catch (error) {
    throw new TypeError(`certgate: createServerCredentials(): ${(error as Error).message}`, { cause: error });
  }
  const credentials = new CertgateServerCredentials({ ...constructorOptions }, contextOptions);
  assertPassesOptions(credentials);
  return credentials;
}

// Node's TLS layer skips ca input that is not a PEM certificate without a
// word: a mistyped file would then trust nothing, silently.
function assertCaCertificates(ca: string | Buffer | readonly (string | Buffer)[]): void {
  const values = Array.isArray(ca) ? ca : [ca];
  values.forEach((value: string | Buffer, i: number) => {
    const which = values.length === 1 ? "options.ca" : `options.ca[${i}]`;
    const input = decodePemOrDer(typeof value === "string" ? value : new Uint8Array(value));
    if (input.kind === "problem") {
      throw new TypeError(
        `certgate: createServerCredentials() ${which} must be PEM CA certificates: ${input.reason}${input.block === undefined ? "" : ` (block ${input.block})`}`,
      );
    }
    if (!input.pem) {
      throw new TypeError(
        `certgate: createServerCredentials() ${which} is DER; Node's TLS layer takes PEM certificates`,
      );
    }
  });
}

// grpc-js builds its TLS server from `_getConstructorOptions()` and
// `_getSecureContextOptions()` (server.js, createHttp2Server). Should a
// release stop doing so, a server would not ask for certificates: every call
// would be refused, never admitted, but it is better said at start-up.
function assertPassesOptions(credentials: ServerCredentials): void {
  const c = credentials as unknown as {
    _isSecure?: () => boolean;
    _getConstructorOptions?: () => { requestCert?: unknown; rejectUnauthorized?: unknown } | null;
    _getSecureContextOptions?: () => { cert?: unknown } | null;
  };
  let ok = false;
  try {
    const ctor = c._getConstructorOptions?.();
    ok =
      c._isSecure?.() === true &&
      ctor?.requestCert === true &&
      ctor.rejectUnauthorized === false &&
      c._getSecureContextOptions?.()?.cert !== undefined;
  } catch {
    ok = false;
  }
  if (!ok) {
    throw new Error(
      "certgate: this @grpc/grpc-js version does not take TLS server options from ServerCredentials as 1.14 does; certgate/grpc-js cannot ask clients for certificates with it",
    );
  }
}
