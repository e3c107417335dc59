import type * as http from "node:http";
import type * as http2 from "node:http2";
import type { ContextValues } from "@connectrpc/connect";
import { createLruCache } from "../core/lru-cache.js";
import { peerCertificateOf, type NodeRequestLike, type PeerCertificate } from "../core/peer-certificate.js";
import { publicReason } from "../core/refusal-reasons.js";
import type { Decision } from "../core/decision-report.js";
import { forwardingHeaders } from "../proxy/forwarding-formats.js";
import { createRefusedCallLimit } from "../decision/refused-call-limit.js";
import { gateCoreOf, probeGate, type ClientCertGate, type GateCore, type GateDecision } from "./client-cert-gate.js";
import { isMalformedRequest } from "./malformed-request.js";
import { peerCertificateContextValues, peerCertificateKey } from "./context-values.js";
import { recordResponse, replayResponse, type RecordedResponse } from "./recorded-response.js";
import { isConnectContentType, requestShapeOf } from "./request-shape.js";
import { createUnroutedShapes } from "./unrouted-shapes.js";

/**
 * FastRefusalOptions configures `createFastRefusalHandler`.
 */
export interface FastRefusalOptions {
  /** The gate given to the adapter as `requestGate` (from `createClientCertGate`). Required. */
  gate: ClientCertGate;
  /**
   * The adapter's `contextValues`, when it is not `peerCertificateContextValues`
   * (for example `createPeerCertificateContextValues` behind a proxy): the
   * fast path reads the peer the same way. By default, `peerCertificateContextValues`.
   */
  contextValues?: (req: NodeRequestLike) => ContextValues;
  /**
   * After this many refused calls on one HTTP/2 connection, certgate closes
   * it gracefully (GOAWAY with NO_ERROR: calls in flight finish, new ones
   * must come on a new connection, which costs the client a TLS handshake).
   * `Infinity` never closes. Connections from a trusted proxy are never
   * closed (they carry other clients). By default, 100.
   */
  maxRefusedCallsPerConnection?: number;
}

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;
type NodeHandler<Req extends NodeRequest, Res extends NodeResponse, Rest extends unknown[] = []> = (
  req: Req,
  res: Res,
  ...rest: Rest
) => void;

const proxyHeaders = Object.values(forwardingHeaders).map((h) => h.toLowerCase());

/**
 * createFastRefusalHandler wraps the Node request handler of
 * `connectNodeAdapter` so that a refused call on a known HTTP/2 connection is
 * answered before Connect sees it: no request object, header copy, abort
 * signal or error is built, and the body is never read. The answer is
 * Connect's own, byte for byte: the first refusal of each procedure, protocol
 * and compression is left to Connect and recorded, and later ones replay it
 * (Connect unary and streaming, gRPC, gRPC-Web: HTTP status, headers, body,
 * trailers with the `ClientCertificateError` detail). `onDecision` hears of
 * every call as before.
 *
 * Anything else goes to the wrapped handler unchanged: admitted and open
 * calls, a connection whose decision is still pending (its first call),
 * HTTP/1.1, GET requests, unknown paths and content types, and requests
 * from a trusted proxy. After `maxRefusedCallsPerConnection` refused calls
 * (100 by default) a connection is closed with GOAWAY. Each call is decided
 * once: an admitted call's decision goes to the gate, which enforces and
 * reports it without deciding again. A request shape (path, protocol,
 * compression) that Connect answered without reaching the gate, such as an
 * unknown path, goes straight to the wrapped handler, probed again once in
 * 64 calls.
 *
 * `guardRequestHandler(handler, { gate })` is the usual way to get it: the
 * same wrapper inside the malformed-request guard. Use this one to compose
 * handlers yourself; keep the guard outside it.
 *
 * @example
 * const gate = createClientCertGate({ store });
 * const handler = connectNodeAdapter({ routes, requestGate: gate, contextValues: peerCertificateContextValues });
 * http2.createSecureServer(tls, guardRequestHandler(createFastRefusalHandler(handler, { gate })));
 */
export function createFastRefusalHandler<
  Req extends NodeRequest,
  Res extends NodeResponse,
  Rest extends unknown[] = [],
>(handler: NodeHandler<Req, Res, Rest>, options: FastRefusalOptions): NodeHandler<Req, Res, Rest> {
  if (typeof handler !== "function") {
    throw new TypeError("certgate: createFastRefusalHandler needs the adapter's request handler");
  }
  const core = gateCoreOf(options?.gate);
  if (core === undefined) {
    throw new TypeError(
      "certgate: options.gate must be the gate of createClientCertGate that the adapter uses as requestGate",
    );
  }
  const contextValues = options.contextValues ?? peerCertificateContextValues;
  if (typeof contextValues !== "function") {
    throw new TypeError("certgate: options.contextValues must be the adapter's contextValues function");
  }
  const refusals = createRefusedCallLimit(options.maxRefusedCallsPerConnection);
  const peerOf =
    contextValues === peerCertificateContextValues
      ? peerCertificateOf
      : (req: NodeRequestLike) => contextValues(req).get(peerCertificateKey);
  // Paths where the gate ran, to their procedure: Connect's routes only.
  const procedures = new Map<string, string>();
  const responses = createLruCache<string, RecordedResponse>(512);
  // Authorities seen to make a valid request URL: a malformed one goes to
  // Connect, whose throw the guard answers with 400, as without the fast path.
  const goodAuthorities = new Set<string>();
  const unrouted = createUnroutedShapes();

  function pass(req: Req, res: Res, rest: Rest): void {
    handler(req, res, ...rest);
  }

  // The first call of a path, or of a response shape: Connect answers it;
  // what the gate saw teaches the path's procedure, and a refusal is kept.
  // `decided`, the call's decision when the fast path made it, goes to the
  // gate, which otherwise decides and hands its decision back.
  function learn(req: Req, res: Res, rest: Rest, path: string, peer: PeerCertificate, decided?: GateDecision): void {
    const recording = recordResponse(res as unknown as http2.Http2ServerResponse);
    const seen = probeGate(core as GateCore, () => handler(req, res, ...rest), decided);
    if (seen.procedure === undefined || seen.peer !== peer) {
      // Not routed to the gate, or the adapter reads another peer: nothing to learn.
      recording.discard();
      if (seen.procedure === undefined) unrouted.note(req, path);
      return;
    }
    if (procedures.size < 10_000) procedures.set(path, seen.procedure);
    const session = (req as Partial<http2.Http2ServerRequest>).stream?.session;
    const decision = refusalOf(seen.decision, session);
    const key = decision === undefined ? undefined : responseKey(req, path, decision);
    if (key === undefined) {
      recording.discard();
    } else {
      recording.keep((response) => responses.set(key, response));
    }
    if (decision !== undefined) refusals.count(session);
  }

  // The decision when it is a refusal; a pending decision counts towards
  // the connection's bound once it is known to refuse.
  function refusalOf(
    decision: Decision | Promise<Decision> | undefined,
    session: http2.Http2Session | undefined,
  ): Decision | undefined {
    if (decision instanceof Promise) {
      void decision.then((d) => {
        if (isRefusal(d)) refusals.count(session);
      });
      return undefined;
    }
    return decision !== undefined && isRefusal(decision) ? decision : undefined;
  }

  return function fastRefusalHandler(req, res, ...rest) {
    // HTTP/2 POST only: HTTP/1.1 must drain or close, and GET carries the message in the URL.
    const stream = (req as Partial<http2.Http2ServerRequest>).stream;
    const path = req.url;
    if (stream === undefined || req.method !== "POST" || path === undefined || path.includes("?") || fromProxy(req)) {
      return pass(req, res, rest);
    }
    let peer: PeerCertificate | undefined;
    try {
      peer = peerOf(req);
    } catch {
      return pass(req, res, rest);
    }
    if (peer === undefined || peer.source === "proxy") {
      return pass(req, res, rest);
    }
    const procedure = procedures.get(path);
    if (procedure === undefined) {
      return unrouted.skips(req, path) ? pass(req, res, rest) : learn(req, res, rest, path, peer);
    }
    if (core.isOpen(procedure)) {
      return pass(req, res, rest);
    }
    const session = stream.session;
    const decided = core.decide(peer, core.needsProcedure ? procedure : undefined);
    const decision = refusalOf(decided, session);
    if (decision === undefined) {
      // Admitted, or pending: the gate enforces this decision rather than making another.
      probeGate(core, () => handler(req, res, ...rest), { procedure, peer, decision: decided });
      return;
    }
    const authority = (req as Partial<http2.Http2ServerRequest>).authority;
    if (typeof authority !== "string" || !goodAuthorities.has(authority)) {
      if (isMalformedRequest(req)) return pass(req, res, rest);
      if (typeof authority === "string" && goodAuthorities.size < 64) goodAuthorities.add(authority);
    }
    const key = responseKey(req, path, decision);
    const recorded = key === undefined ? undefined : responses.get(key);
    if (recorded === undefined) {
      return learn(req, res, rest, path, peer, { procedure, peer, decision });
    }
    core.report(decision, procedure, "gate");
    replayResponse(res as unknown as http2.Http2ServerResponse, recorded);
    refusals.count(session);
  };
}

function isRefusal(decision: Decision): boolean {
  return decision.kind !== "admitted" && decision.reportOnly !== true;
}

// A request that carries a certificate-forwarding header goes to the
// adapter, whose context values decide whether to believe it.
function fromProxy(req: NodeRequest): boolean {
  const headers = req.headers;
  for (const name of proxyHeaders) {
    if (headers[name] !== undefined) return true;
  }
  return false;
}

// What Connect's refusal depends on: the request's shape (procedure,
// protocol, format, compression), and the refusal itself.
function responseKey(req: NodeRequest, path: string, decision: Decision): string | undefined {
  if (decision.kind === "admitted" || !isConnectContentType(req.headers["content-type"])) return undefined;
  const shape = requestShapeOf(req, path);
  if (shape === undefined) return undefined;
  return `${shape}\n${decision.code}\n${publicReason(decision.reason)}\n${decision.message}`;
}
