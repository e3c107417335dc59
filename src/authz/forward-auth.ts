// HTTP forward auth, as nginx `auth_request`, Caddy `forward_auth` and
// Traefik ForwardAuth ask it: the proxy sends the request's headers (with the
// client certificate in a header it sets), certgate answers 200 with the
// identity headers, or 401/403 with the reason.
import type * as http from "node:http";
import type * as http2 from "node:http2";
import type { PeerCertificate } from "../core/peer-certificate.js";
import type { ForwardedPeerReader, ForwardingRequestLike } from "../proxy/forwarded-peer.js";
import type { TrustedProxyCheck } from "../proxy/trusted-proxies.js";
import { untrustedProxy, type AuthzAnswer, type AuthzDecide } from "./authz-decision.js";
import { refusalReasonHeader } from "./identity-headers.js";

/**
 * AuthzRequestEvent describes one answered request, for logs: refusals and
 * requests from untrusted addresses.
 */
export interface AuthzRequestEvent {
  /** `forward-auth` or `ext-authz` (Envoy's Check). */
  readonly protocol: "forward-auth" | "ext-authz";
  /** The peer address the request came from. */
  readonly address: string | undefined;
  /** The original method, as the proxy said (X-Original-Method, X-Forwarded-Method). */
  readonly method: string | undefined;
  /** The procedure (the original path), or "" when the proxy did not say. */
  readonly procedure: string;
  readonly answer: AuthzAnswer;
  /** The SHA-256 thumbprint of the forwarded certificate, when one was read. */
  readonly sha256: string | undefined;
}

/**
 * ForwardAuthOptions is what `createForwardAuthHandler` needs.
 */
export interface ForwardAuthOptions {
  /** The decision (see `createAuthzDecide`). */
  readonly decide: AuthzDecide;
  /** Which addresses are the proxies; any other is answered 403. */
  readonly trust: TrustedProxyCheck;
  /** Reads the forwarded certificate of a request (see `createForwardedPeerReader`). */
  readonly readPeer: ForwardedPeerReader;
  /** Called for every denial; errors it throws are ignored. By default, nothing. */
  readonly onDenied?: (event: AuthzRequestEvent) => void;
}

type Request = http.IncomingMessage | http2.Http2ServerRequest;
type Response = http.ServerResponse | http2.Http2ServerResponse;

/** The longest original URI read, in characters; a longer one gets the default rule. */
const maxProcedureLength = 1024;

/**
 * originalProcedure returns the path of the original request, which selects
 * the per-procedure rules: X-Original-URI (nginx) or X-Forwarded-Uri (Caddy,
 * Traefik), without its query. "" (the default rule) when the proxy sends
 * neither.
 */
export function originalProcedure(headers: Request["headers"]): string {
  const uri = first(headers["x-original-uri"]) ?? first(headers["x-forwarded-uri"]);
  if (uri === undefined || uri.length > maxProcedureLength) return "";
  const query = uri.search(/[?#]/);
  return query < 0 ? uri : uri.slice(0, query);
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * createForwardAuthHandler returns the request handler of forward auth. Any
 * path is a forward-auth request: the proxy picks it.
 */
export function createForwardAuthHandler(options: ForwardAuthOptions): (req: Request, res: Response) => void {
  const { decide, trust, readPeer, onDenied } = options;
  const denied = (req: Request, procedure: string, answer: AuthzAnswer, peer: PeerCertificate | undefined) => {
    if (onDenied === undefined) return;
    try {
      onDenied({
        protocol: "forward-auth",
        address: req.socket?.remoteAddress,
        method: first(req.headers["x-original-method"]) ?? first(req.headers["x-forwarded-method"]),
        procedure,
        answer,
        sha256: peer?.certificate?.sha256,
      });
    } catch {
      // A log must not change the answer.
    }
  };
  return (req, res) => {
    const procedure = originalProcedure(req.headers);
    if (!trust.byAddress(req.socket?.remoteAddress)) {
      denied(req, procedure, untrustedProxy, undefined);
      answer(res, untrustedProxy);
      return;
    }
    const peer = readPeer(req as unknown as ForwardingRequestLike);
    const result = decide(peer, procedure);
    if (result instanceof Promise) {
      void result.then((settled) => {
        if (settled.kind === "deny") denied(req, procedure, settled, peer);
        answer(res, settled);
      });
    } else {
      if (result.kind === "deny") denied(req, procedure, result, peer);
      answer(res, result);
    }
    // The body, if a proxy sends one, is not read: drain it.
    if (!req.readableEnded) req.resume();
  };
}

function answer(res: Response, result: AuthzAnswer): void {
  if (res.writableEnded || res.destroyed) return;
  if (result.kind === "allow") {
    for (const [name, value] of result.headers) res.setHeader(name, value);
    res.setHeader("content-length", "0");
    res.writeHead(200);
    res.end();
    return;
  }
  const body = `${result.status === 401 ? "unauthenticated" : "forbidden"}: ${result.message} (${result.reason})\n`;
  res.setHeader(refusalReasonHeader, result.reason);
  res.setHeader("content-type", "text/plain; charset=utf-8");
  res.setHeader("content-length", String(Buffer.byteLength(body)));
  res.writeHead(result.status);
  res.end(body);
}
