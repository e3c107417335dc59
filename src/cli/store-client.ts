import { createSecureContext } from "node:tls";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { CertificateStoreService } from "../gen/certgate/v1/certificate_store_pb.js";
import { readTextFile, tlsConfigReason } from "./certificate-files.js";
import { CliError, usageError, type CliIo } from "./common.js";
import { displayText } from "../core/display-text.js";
import type { TlsFlagFiles } from "./tls-reload.js";

/**
 * storeFlags are the flags shared by the commands that talk to a certificate
 * store service, for `parseArgs`.
 */
export const storeFlags = {
  store: { type: "string" },
  cert: { type: "string" },
  key: { type: "string" },
  ca: { type: "string" },
  timeout: { type: "string" },
  json: { type: "boolean" },
} as const;

/**
 * storeFlagsHelp is the help text of `storeFlags`.
 */
export const storeFlagsHelp = `Store options (each also read from the environment variable shown):
      --store URL       The certificate store service, such as
                        https://localhost:8444                     CERTGATE_STORE
      --cert FILE       Your client certificate (PEM)               CERTGATE_CERT
      --key FILE        Its private key (PEM)                       CERTGATE_KEY
      --ca FILE         CA certificate(s) to trust for the store's
                        TLS certificate (PEM). By default, the
                        system's trusted CAs.                      CERTGATE_CA
      --timeout SECONDS How long to wait for the store. By default, 30.
      --json            Print JSON instead of text`;

/**
 * StoreFlagValues are the parsed `storeFlags`.
 */
export interface StoreFlagValues {
  store?: string;
  cert?: string;
  key?: string;
  ca?: string;
  timeout?: string;
  json?: boolean;
}

/**
 * StoreConnection is a client of the certificate store service, made from
 * the command line flags.
 */
export interface StoreConnection {
  /** The generated Connect client. */
  readonly client: Client<typeof CertificateStoreService>;
  /** The store URL, for messages. */
  readonly url: string;
  /** Per-call options: the time-out. */
  readonly callOptions: { timeoutMs: number };
}

/**
 * connectStore makes a Connect client for the store named by `--store` (or
 * `CERTGATE_STORE`), presenting the certificate of `--cert`/`--key`. Bad or
 * missing flags and unreadable files fail here, before any request.
 */
export async function connectStore(command: string, values: StoreFlagValues, io: CliIo): Promise<StoreConnection> {
  const store = pickStoreFlag(values, io, "store", "CERTGATE_STORE");
  if (store === undefined) {
    throw usageError(command, "missing --store URL (or CERTGATE_STORE)");
  }
  const baseUrl = storeUrlOf(command, store);
  let timeoutMs = 30_000;
  if (values.timeout !== undefined) {
    const seconds = Number(values.timeout);
    if (!Number.isFinite(seconds) || seconds <= 0) {
      throw usageError(command, `--timeout ${values.timeout}: expected a number of seconds above 0`);
    }
    timeoutMs = Math.round(seconds * 1000);
  }
  const nodeOptions = await readStoreClientTls(command, values, io);
  const transport = createConnectTransport({ baseUrl, httpVersion: "2", nodeOptions });
  return { client: createClient(CertificateStoreService, transport), url: baseUrl, callOptions: { timeoutMs } };
}

// A flag's value, else its environment variable's; empty is unset.
function pickStoreFlag(
  values: StoreFlagValues,
  io: CliIo,
  flag: "store" | "cert" | "key" | "ca",
  variable: string,
): string | undefined {
  const value = values[flag] ?? io.env[variable];
  return typeof value === "string" && value !== "" ? value : undefined;
}

/**
 * storeUrlOf checks a `--store` URL (https:// only: client certificates need
 * TLS) and returns it without a trailing slash.
 */
export function storeUrlOf(command: string, store: string): string {
  let url: URL;
  try {
    url = new URL(store);
  } catch {
    throw usageError(command, `--store ${store}: not a URL, expected https://HOST:PORT`);
  }
  if (url.protocol !== "https:") {
    throw usageError(command, `--store ${store}: expected an https:// URL (client certificates need TLS)`);
  }
  return url.href.replace(/\/+$/, "");
}

/**
 * storeClientFiles names the files of a store client's certificate, key
 * and CAs: `--cert`, `--key` and `--ca` (or `CERTGATE_CERT`, `CERTGATE_KEY`
 * and `CERTGATE_CA`), each with its flag for messages. A missing
 * certificate or key is a usage error.
 */
export function storeClientFiles(
  command: string,
  values: Pick<StoreFlagValues, "cert" | "key" | "ca">,
  io: CliIo,
): TlsFlagFiles {
  const certFile = pickStoreFlag(values, io, "cert", "CERTGATE_CERT");
  const keyFile = pickStoreFlag(values, io, "key", "CERTGATE_KEY");
  const caFile = pickStoreFlag(values, io, "ca", "CERTGATE_CA");
  if (certFile === undefined || keyFile === undefined) {
    throw usageError(
      command,
      `missing ${certFile === undefined ? "--cert FILE (or CERTGATE_CERT)" : "--key FILE (or CERTGATE_KEY)"}: ` +
        "the store admits clients by their certificate",
    );
  }
  return {
    cert: ["--cert", certFile],
    key: ["--key", keyFile],
    ca: caFile === undefined ? undefined : ["--ca", caFile],
  };
}

/**
 * readStoreClientTls reads the client certificate of `--cert`/`--key` (or
 * `CERTGATE_CERT`/`CERTGATE_KEY`) and the CAs of `--ca` that a store client
 * presents and trusts. Missing flags, unreadable files and a key that does
 * not belong to the certificate fail here, before any request.
 */
export async function readStoreClientTls(
  command: string,
  values: Pick<StoreFlagValues, "cert" | "key" | "ca">,
  io: CliIo,
): Promise<{ cert: string; key: string; ca: string | undefined }> {
  const files = storeClientFiles(command, values, io);
  const [, certFile] = files.cert;
  const [, keyFile] = files.key;
  const caFile = files.ca?.[1];
  const cert = await readTextFile("--cert", certFile, io.cwd);
  const key = await readTextFile("--key", keyFile, io.cwd);
  const ca = caFile === undefined ? undefined : await readTextFile("--ca", caFile, io.cwd);
  try {
    // Node checks the PEM and that the key belongs to the certificate here,
    // so a mix-up is reported as such instead of as a failed handshake.
    createSecureContext({ cert, key, ca });
  } catch (error) {
    const named = `--cert ${certFile} / --key ${keyFile}${ca === undefined ? "" : ` / --ca ${caFile}`}`;
    throw new CliError(`${named}: ${tlsConfigReason(error)}`, undefined, { cause: error });
  }
  return { cert, key, ca };
}

// TLS failures that mean "the store's certificate is not trusted": the
// usual fix is --ca.
const untrusted = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_GET_ISSUER_CERT",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/**
 * storeErrorReason turns a failed call into the one-line reason that
 * `certgate` prints: what the store said, in words, with the id concerned.
 */
export function storeErrorReason(error: unknown, url: string, id?: string): string {
  const connect = ConnectError.from(error);
  // The store's message is text from the other end: shown by the display rule.
  const e = { code: connect.code, rawMessage: displayText(connect.rawMessage, 500) };
  const about = id === undefined ? "" : ` (certificate_id ${displayText(JSON.stringify(id))})`;
  const causeCodes = causeChain(error).map((c) => (c as { code?: unknown }).code);
  const tlsCode = causeCodes.find((c): c is string => typeof c === "string" && untrusted.has(c));
  if (tlsCode !== undefined) {
    return `cannot trust the TLS certificate of ${url} (${e.rawMessage}): pass --ca with the CA that issued it`;
  }
  switch (e.code) {
    case Code.AlreadyExists:
      return `already exists${about}`;
    case Code.NotFound:
      return `not found${about}`;
    case Code.InvalidArgument:
      return e.rawMessage;
    case Code.ResourceExhausted:
      return `refused as too large: ${e.rawMessage}`;
    case Code.Unauthenticated:
      return `the store refused the client certificate (${e.rawMessage}); check --cert and --key`;
    case Code.PermissionDenied:
      return `permission denied: ${e.rawMessage}`;
    case Code.Unavailable:
      return `cannot reach the store at ${url}: ${e.rawMessage}`;
    case Code.DeadlineExceeded:
      return `the store at ${url} did not answer in time (see --timeout)`;
    case Code.Canceled:
      return "canceled";
    default:
      return `the call to ${url} failed: ${e.rawMessage} (${Code[e.code]})`;
  }
}

function causeChain(error: unknown): unknown[] {
  const chain: unknown[] = [];
  let current = error;
  while (current instanceof Error && !chain.includes(current)) {
    chain.push(current);
    current = current.cause;
  }
  return chain;
}
