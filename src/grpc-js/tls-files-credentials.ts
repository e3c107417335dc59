import { rootCertificates, type PeerCertificate } from "node:tls";
// A namespace import: a named import of a member an old grpc-js lacks would
// fail at link time, before certgate's own version check can say why.
import * as grpcJs from "@grpc/grpc-js";
import type { ChannelCredentials, experimental, ServerCredentials } from "@grpc/grpc-js";
import type { TlsFiles } from "../core/tls-files.js";

/**
 * ServerCredentialsFilesOptions is the form of `createServerCredentials`
 * options that follows files on disk.
 */
export interface ServerCredentialsFilesOptions {
  /**
   * The certificate, key and client CA, followed on disk
   * (`createTlsFiles`): each new set reaches the server's new handshakes,
   * open connections keep theirs. Required.
   */
  files: TlsFiles;
}

/**
 * followTlsFiles makes `credentials` follow `files`: grpc-js gives each
 * server bound with them the new set (`setSecureContext`) through its
 * secure context watchers, the hook its own `ServerCredentials` subclasses
 * update through. Stops when `files` is closed.
 */
export function followTlsFiles<C extends ServerCredentials>(credentials: C, files: TlsFiles): C {
  // updateSecureContextOptions is protected in grpc-js 1.14's typings: the
  // way a subclass (certgate's is one) hands servers a new context.
  const update = (credentials as unknown as { updateSecureContextOptions?: (o: object) => void })
    .updateSecureContextOptions;
  if (typeof update !== "function") {
    throw new Error(
      "certgate: this @grpc/grpc-js version cannot update a server's TLS context as 1.14 does; createServerCredentials({ files }) needs it",
    );
  }
  // Without a CA file, an empty list: as in createServerCredentials, Node's
  // public roots must not start verifying client chains after a reload.
  files.onChange((contents) => update.call(credentials, { ...contents, ca: contents.ca ?? [] }));
  return credentials;
}

/**
 * ClientCertChannelOptions configures `createClientCertChannelCredentials`.
 */
export interface ClientCertChannelOptions {
  /**
   * Checks the server's name against its certificate, as Node's
   * `checkServerIdentity` does. By default, Node's check.
   */
  checkServerIdentity?: (hostname: string, cert: PeerCertificate) => Error | undefined;
}

/**
 * createClientCertChannelCredentials returns grpc-js channel credentials
 * that present the client certificate of `files` (see `createTlsFiles`) and
 * trust the server certificates its `ca` issued (the system's CAs without
 * one). A renewed certificate is presented on the channel's next new
 * connection; calls on open connections are not disturbed. It uses grpc-js's
 * `experimental.createCertificateProviderChannelCredentials`.
 *
 * @example
 * const files = createTlsFiles({ cert: "client.crt", key: "client.key", ca: "ca.crt" });
 * const client = new EchoClient("api.internal:8443", createClientCertChannelCredentials(files));
 */
export function createClientCertChannelCredentials(
  files: TlsFiles,
  options: ClientCertChannelOptions = {},
): ChannelCredentials {
  const identity = new Set<experimental.IdentityCertificateUpdateListener>();
  const cas = new Set<experimental.CaCertificateUpdateListener>();
  const identityOf = () => {
    const { cert, key } = files.secureContextOptions();
    return { certificate: Buffer.from(cert), privateKey: Buffer.from(key) };
  };
  const caOf = () => ({ caCertificate: Buffer.from(files.secureContextOptions().ca ?? rootCertificates.join("\n")) });
  files.onChange(() => {
    for (const listener of identity) listener(identityOf());
    for (const listener of cas) listener(caOf());
  });
  const provider: experimental.CertificateProvider = {
    addCaCertificateListener(listener) {
      cas.add(listener);
      listener(caOf());
    },
    removeCaCertificateListener: (listener) => void cas.delete(listener),
    addIdentityCertificateListener(listener) {
      identity.add(listener);
      listener(identityOf());
    },
    removeIdentityCertificateListener: (listener) => void identity.delete(listener),
  };
  return grpcJs.experimental.createCertificateProviderChannelCredentials(
    provider,
    provider,
    options.checkServerIdentity === undefined ? undefined : { checkServerIdentity: options.checkServerIdentity },
  );
}
