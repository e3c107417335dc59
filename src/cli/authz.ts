import { createSecureContext } from "node:tls";
import { createAuthzServer, type AuthzServer } from "../authz/authz-server.js";
import type { AuthzRequestEvent } from "../authz/forward-auth.js";
import { forwardingFormats, type ForwardingFormat } from "../proxy/forwarding-formats.js";
import type { PeerCertificateContextValuesOptions } from "../proxy/forwarded-peer.js";
import { readTextFile, tlsConfigReason } from "./certificate-files.js";
import { CliError, defineCommand, errorMessage, expectPositionals, ExitCode, usageError } from "./common.js";
import { countFlag, parseListen, secondsFlag, type Listen } from "./listen-flags.js";
import { createRateLimitedLog } from "./rate-limited-log.js";
import { serveLogOf, withLogFormat } from "./serve-log.js";
import { refusalLogFlags, refusalLogOf, stopped, tlsFilesOf } from "./server-command.js";
import { followTlsFlags, type TlsReload } from "./tls-reload.js";
import { openStoreSources, storeSourceFlags, storeSourceHelp } from "./store-sources.js";

const help = `Usage: certgate authz --trusted-proxy CIDR... [--forwarded FORMAT[:HEADER]]...
                      (--data-dir DIR | --database URL | --store URL... |
                       --thumbprint T...) [--policy FILE]
                      [--listen HOST:PORT] [--tls-cert FILE --tls-key FILE]
                      [--log-format text|json] [LIMITS]

Answers the external authorization requests of a proxy that terminates TLS
(nginx auth_request, Caddy forward_auth, Traefik ForwardAuth, Envoy
ext_authz over gRPC) with certgate's decision: the client certificate the
proxy forwards is checked against the stores and the policy, as the
interceptors check it, and the proxy is told to forward the request (200,
with Certgate-Subject, Certgate-Sha256, Certgate-Certificate-Id and
Certgate-Label-KEY headers for the upstream) or to refuse it (401 or 403,
the reason in Certgate-Refusal-Reason). Any path is a forward-auth request
except /healthz (200 "ok") and envoy.service.auth.v3.Authorization/Check.
X-Original-URI (nginx) or X-Forwarded-Uri (Caddy, Traefik) selects the
policy's per-procedure rules. See docs/proxies.md.

Options:
      --listen HOST:PORT   Where to listen: HTTP/1.1 and h2c on the same
                           port, or TLS with --tls-cert. Plaintext only on a
                           loopback address. By default, 127.0.0.1:8446.
      --trusted-proxy CIDR The proxies' address range, such as 127.0.0.1 or
                           10.0.0.0/8 (repeatable, required). Requests from
                           anywhere else are refused (403) and logged.
      --forwarded FORMAT[:HEADER]
                           How the proxy forwards the client certificate
                           (repeatable): nginx:HEADER (the header
                           set to $ssl_client_escaped_cert), der-base64:HEADER
                           (Caddy's certificate_der_base64 placeholder,
                           Traefik's X-Forwarded-Tls-Client-Cert), xfcc,
                           aws-alb or azure-app-service. By default, none:
                           only Envoy's Check (which carries the certificate)
                           is answered with a decision; forward auth refuses.
      --tls-cert FILE      The server's certificate (chain), PEM
      --tls-key FILE       Its private key, PEM
${storeSourceHelp}
      --log-format FORMAT  text or json (one JSON object a line).
                           By default, text.
  -h, --help               Show this help

LIMITS ("N" a whole number, "S" seconds, fractions allowed):
      --idle-timeout S     Close a connection after S seconds without a
                           request. By default, 60.
      --headers-timeout S  Close a connection that has not sent its request
                           headers (or finished its TLS handshake) after S
                           seconds. By default, 10.
      --max-header-bytes N The most bytes of request headers. By default, 32768.
      --lookup-timeout S   How long to wait for the store before refusing.
                           By default, 5.
      --refusal-log-limit N
                           Log at most N refusals per interval, then one
                           line "M more refusals in the last S s".
                           By default, 20.
      --refusal-log-interval S
                           The interval of --refusal-log-limit. By default, 10.

SIGINT or SIGTERM stops it.

Examples:
  certgate authz --trusted-proxy 127.0.0.1 --forwarded nginx:X-Client-Cert \\
    --data-dir /var/lib/certgate
  certgate authz --trusted-proxy 10.0.0.0/8 --forwarded xfcc \\
    --store https://certgate-1:8444 --store https://certgate-2:8444 \\
    --cert reader.pem --key reader-key.pem --ca ca.pem \\
    --listen 0.0.0.0:8446 --tls-cert authz.pem --tls-key authz-key.pem
`;

/**
 * authzCommand is `certgate authz`: the decision service for proxies, until
 * SIGINT or SIGTERM.
 */
export const authzCommand = withLogFormat(
  defineCommand(
    {
      name: "authz",
      help,
      options: {
        ...storeSourceFlags,
        listen: { type: "string" },
        "trusted-proxy": { type: "string", multiple: true },
        forwarded: { type: "string", multiple: true },
        "tls-cert": { type: "string" },
        "tls-key": { type: "string" },
        "idle-timeout": { type: "string" },
        "headers-timeout": { type: "string" },
        "max-header-bytes": { type: "string" },
        "lookup-timeout": { type: "string" },
        ...refusalLogFlags,
      },
    },
    async ({ values, positionals }, io) => {
      expectPositionals("authz", positionals, "", { min: 0, max: 0 });
      const listen = parseListen(values.listen ?? "127.0.0.1:8446", "authz");
      const { tlsCert, tlsKey } = tlsFilesOf("authz", values);
      if (tlsCert === undefined && !isLoopback(listen)) {
        throw usageError(
          "authz",
          `--listen ${listen.text}: plaintext is for a loopback address only; give --tls-cert and --tls-key to listen there`,
        );
      }
      const cidrs = values["trusted-proxy"] ?? [];
      if (cidrs.length === 0) {
        throw usageError("authz", "missing --trusted-proxy CIDR: name the proxies' addresses");
      }
      const forwarded = parseForwarded(values.forwarded ?? [], cidrs);
      const limits = {
        idleTimeoutMs: secondsFlag("authz", "idle-timeout", values["idle-timeout"], 60_000, false),
        headersTimeoutMs: secondsFlag("authz", "headers-timeout", values["headers-timeout"], 10_000, false),
        maxHeaderBytes: countFlag("authz", "max-header-bytes", values["max-header-bytes"], 32768, 1024),
        lookupTimeoutMs: secondsFlag("authz", "lookup-timeout", values["lookup-timeout"], 5000, false),
      };
      const refusalLog = refusalLogOf("authz", values);
      let tls: { cert: string; key: string } | undefined;
      if (tlsCert !== undefined && tlsKey !== undefined) {
        tls = {
          cert: await readTextFile("--tls-cert", tlsCert, io.cwd),
          key: await readTextFile("--tls-key", tlsKey, io.cwd),
        };
        try {
          createSecureContext(tls);
        } catch (error) {
          throw new CliError(`--tls-cert ${tlsCert} / --tls-key ${tlsKey}: ${tlsConfigReason(error)}`, undefined, {
            cause: error,
          });
        }
      }
      const log = serveLogOf(io, "authz");
      const sources = await openStoreSources("authz", values, io, log);
      const refusals = createRateLimitedLog(log, refusalLog);
      let server: AuthzServer | undefined;
      let reload: TlsReload | undefined;
      try {
        try {
          server = createAuthzServer({
            ...sources.policy,
            store: sources.store,
            forwarded,
            ...(tls === undefined ? {} : { tls }),
            ...limits,
            onDenied: (event) => refusals.log(refusalLine(event), refusalFields(event)),
          });
        } catch (error) {
          throw new CliError(cliReason(errorMessage(error)), undefined, { cause: error });
        }
        const tlsServer = server.tlsServer;
        if (tlsServer !== undefined && tlsCert !== undefined && tlsKey !== undefined) {
          reload = followTlsFlags({
            files: { cert: ["--tls-cert", tlsCert], key: ["--tls-key", tlsKey] },
            cwd: io.cwd,
            log,
            apply: (contents) => tlsServer.setSecureContext({ ...contents }),
            metricsName: "authz",
          });
        }
        let address;
        try {
          address = await server.listen(listen.port, listen.host);
        } catch (error) {
          const reason =
            (error as { code?: unknown }).code === "EADDRINUSE" ? "address already in use" : errorMessage(error);
          throw new CliError(`cannot listen on ${listen.text}: ${reason} (choose another with --listen)`);
        }
        const scheme = tls === undefined ? "http" : "https";
        const url = listen.kind === "name" ? `${scheme}://${listen.host}:${address.port}` : address.url;
        log.out(`deciding with ${sources.description}`, { sources: sources.description });
        log.out(`listening on ${url}`, { url });
        await stopped(io.signal);
        log("stopping");
      } finally {
        reload?.close();
        await server?.close();
        await sources.close();
        refusals.close();
      }
      log("stopped");
      return ExitCode.ok;
    },
  ),
);

function parseForwarded(list: readonly string[], cidrs: string[]): PeerCertificateContextValuesOptions {
  const formats: ForwardingFormat[] = [];
  let nginxHeader: string | undefined;
  let derBase64Header: string | undefined;
  for (const text of list) {
    const colon = text.indexOf(":");
    const format = (colon < 0 ? text : text.slice(0, colon)) as ForwardingFormat;
    const header = colon < 0 ? undefined : text.slice(colon + 1);
    if (!forwardingFormats.includes(format)) {
      throw usageError(
        "authz",
        `--forwarded ${text}: unknown format ${format}; expected ${forwardingFormats.join(", ")}`,
      );
    }
    const needsHeader = format === "nginx" || format === "der-base64";
    if (needsHeader && (header === undefined || header === "")) {
      throw usageError(
        "authz",
        `--forwarded ${text}: ${format} needs the header name, such as ${format}:X-Client-Cert`,
      );
    }
    if (!needsHeader && header !== undefined) {
      throw usageError("authz", `--forwarded ${text}: ${format} has a fixed header; give ${format} alone`);
    }
    if (formats.includes(format)) {
      throw usageError("authz", `--forwarded ${text}: ${format} is given twice`);
    }
    formats.push(format);
    if (format === "nginx") nginxHeader = header;
    if (format === "der-base64") derBase64Header = header;
  }
  return {
    trustedProxies: { cidrs },
    formats,
    ...(nginxHeader === undefined ? {} : { nginxHeader }),
    ...(derBase64Header === undefined ? {} : { derBase64Header }),
  };
}

// The decision core's and the proxy options' messages, in flag terms.
function cliReason(message: string): string {
  const reason = message.replace(/^certgate: /, "");
  if (reason.startsWith("trustedProxies.cidrs: ")) return `--trusted-proxy: ${reason.slice(22)}`;
  if (/nginxHeader|derBase64Header|header of another format/.test(reason)) return `--forwarded: ${reason}`;
  return `--policy: ${reason}`;
}

function isLoopback(listen: Listen): boolean {
  return listen.host === "localhost" || listen.host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(listen.host);
}

function refusalLine(event: AuthzRequestEvent): string {
  const answer = event.answer;
  const reason = answer.kind === "deny" ? answer.reason : "refused";
  const who = event.sha256 === undefined ? "no certificate" : `SHA-256 ${event.sha256}`;
  const what = event.procedure === "" ? "a request" : JSON.stringify(event.procedure);
  return `refused ${what} from ${event.address ?? "an unknown address"} (${reason}, ${who})`;
}

function refusalFields(event: AuthzRequestEvent): Record<string, unknown> {
  return {
    protocol: event.protocol,
    address: event.address,
    procedure: event.procedure,
    ...(event.method === undefined ? {} : { method: event.method }),
    reason: event.answer.kind === "deny" ? event.answer.reason : "refused",
    ...(event.sha256 === undefined ? {} : { sha256: event.sha256 }),
  };
}
