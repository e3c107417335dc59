import type { SecureContextOptions } from "node:tls";
import type { TlsFiles } from "./tls-files.js";

/**
 * SecureContextServer is a Node TLS server: `https`, `http2`
 * (`createSecureServer`) or `tls`.
 */
export interface SecureContextServer {
  setSecureContext(options: SecureContextOptions): void;
  once(event: "close", listener: () => void): unknown;
}

/**
 * watchServerTls gives `server` each new set of `files` for the handshakes
 * that follow (`server.setSecureContext`); open connections keep theirs.
 * `secureContextOptions` are the server's other context options (such as
 * `ciphers`, `minVersion`, `sessionIdContext`), which `setSecureContext`
 * would otherwise reset; by default, none. Stops when the server closes or
 * when the returned function is called.
 *
 * @example
 * const tls = createTlsFiles({ cert, key, ca });
 * const server = http2.createSecureServer({ ...tls.secureContextOptions(), requestCert: true }, handler);
 * watchServerTls(server, tls);
 */
export function watchServerTls(
  server: SecureContextServer,
  files: TlsFiles,
  secureContextOptions: Omit<SecureContextOptions, "cert" | "key" | "ca"> = {},
): () => void {
  const stop = files.onChange((contents) => server.setSecureContext({ ...secureContextOptions, ...contents }));
  server.once("close", stop);
  return stop;
}
