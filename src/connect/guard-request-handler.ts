import type * as http from "node:http";
import type * as http2 from "node:http2";
import { createFastRefusalHandler, type FastRefusalOptions } from "./fast-refusal.js";
import { isMalformedRequest } from "./malformed-request.js";

export { isMalformedRequest } from "./malformed-request.js";

/**
 * GuardedRequestError is what `GuardRequestHandlerOptions.onError` hears of:
 * `malformed_request` when the client sent a request the adapter cannot
 * represent (no `Host`, an authority that is not a valid URL host, such as
 * an unbracketed IPv6 address), answered with 400; `handler_error` for any
 * other synchronous throw, answered with 500.
 */
export interface GuardedRequestError {
  readonly kind: "malformed_request" | "handler_error";
  /** What the handler threw. */
  readonly error: unknown;
  /** The request's method and path, as the client sent them: escape them before logging. */
  readonly method: string;
  readonly path: string;
}

/**
 * GuardRequestHandlerOptions configures `guardRequestHandler`.
 */
export interface GuardRequestHandlerOptions {
  /**
   * Called for every request the guard answered in the handler's place.
   * By default, malformed requests are answered silently (they are the
   * client's mistake, and logging each would let any client flood the log),
   * and the first other error of the process is reported as a process
   * warning with code `CERTGATE_HANDLER_ERROR`.
   */
  onError?: (event: GuardedRequestError) => void;
  /**
   * The gate the adapter has as `requestGate` (from `createClientCertGate`):
   * refused calls then take the fast path of `createFastRefusalHandler`,
   * inside the guard. By default, none: the handler alone, guarded.
   */
  gate?: FastRefusalOptions["gate"];
  /**
   * With `gate`: the adapter's `contextValues`, when it is not
   * `peerCertificateContextValues`. By default, `peerCertificateContextValues`.
   */
  contextValues?: FastRefusalOptions["contextValues"];
  /**
   * With `gate`: close an HTTP/2 connection with GOAWAY after this many
   * refused calls (`Infinity` never). By default, 100.
   */
  maxRefusedCallsPerConnection?: number;
}

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;

/**
 * guardRequestHandler wraps a Node request handler, such as the one
 * `connectNodeAdapter` returns, so that no request can end the process by
 * making the handler throw synchronously. connect-node 2.3.0 throws inside
 * the request event for an HTTP/2 `:authority` of `::1:8443` (an unbracketed
 * IPv6 address) and for an HTTP/1.0 request without `Host`; an exception
 * there is uncaught, and ends the process. The guarded handler answers such
 * a request with 400, any other synchronous throw with 500, or resets the
 * stream (HTTP/2) or closes the connection (HTTP/1) when the response had
 * already begun, and goes on serving. A request the handler accepts costs
 * nothing more.
 *
 * Every certgate server uses it (`certgate serve`,
 * `createCertificateStoreServer`); use it around your own adapter too.
 * Arguments after the response are passed on, so it wraps an Express
 * middleware as well: `app.use(guardRequestHandler(expressConnectMiddleware(...)))`
 * answers 400 where Express would answer 500 with a stack trace (Express
 * catches the throw, so the process survives either way). Fastify catches
 * the throw inside its route handler: see `isMalformedRequest`.
 *
 * @example
 * const gate = createClientCertGate({ store });
 * http2
 *   .createSecureServer(
 *     { cert, key, requestCert: true, rejectUnauthorized: false, allowHTTP1: true },
 *     guardRequestHandler(
 *       connectNodeAdapter({ routes, requestGate: gate, contextValues: peerCertificateContextValues }),
 *       { gate },
 *     ),
 *   )
 *   .listen(8443);
 */
export function guardRequestHandler<Req extends NodeRequest, Res extends NodeResponse, Rest extends unknown[] = []>(
  handler: (req: Req, res: Res, ...rest: Rest) => void,
  options: GuardRequestHandlerOptions = {},
): (req: Req, res: Res, ...rest: Rest) => void {
  const onError = options.onError ?? warnOnce;
  const { gate, contextValues, maxRefusedCallsPerConnection } = options;
  if (gate === undefined && (contextValues !== undefined || maxRefusedCallsPerConnection !== undefined)) {
    throw new TypeError(
      "certgate: guardRequestHandler's contextValues and maxRefusedCallsPerConnection apply to the fast refusal path, which needs options.gate (the adapter's requestGate)",
    );
  }
  const inner =
    gate === undefined
      ? handler
      : createFastRefusalHandler(handler, { gate, contextValues, maxRefusedCallsPerConnection });
  return (req, res, ...rest) => {
    try {
      inner(req, res, ...rest);
    } catch (error) {
      const kind = isMalformedRequest(req) ? "malformed_request" : "handler_error";
      answer(req, res, kind === "malformed_request" ? 400 : 500);
      try {
        onError({ kind, error, method: req.method ?? "", path: req.url ?? "" });
      } catch {
        // A throwing callback must not undo the guard.
      }
    }
  };
}

function answer(req: NodeRequest, res: NodeResponse, status: number): void {
  try {
    if (!res.headersSent && !res.writableEnded) {
      const body = status === 400 ? "malformed request\n" : "internal error\n";
      (res as http.ServerResponse).writeHead(status, {
        "content-type": "text/plain; charset=utf-8",
        "content-length": Buffer.byteLength(body),
        // HTTP/1: the body of the request may still be coming; do not read it.
        ...("stream" in req ? {} : { connection: "close" }),
      });
      res.end(body);
    } else if ("stream" in req) {
      req.stream.close(0x2); // NGHTTP2_INTERNAL_ERROR
    } else {
      req.socket.destroy();
    }
  } catch {
    // The stream or socket is gone already: nothing left to answer.
    if ("stream" in req) req.stream.destroy();
    else req.socket.destroy();
  }
}

let warned = false;
function warnOnce(event: GuardedRequestError): void {
  if (event.kind !== "handler_error" || warned) return;
  warned = true;
  const reason = event.error instanceof Error ? event.error.message : String(event.error);
  process.emitWarning(
    `certgate: a request handler threw synchronously (${JSON.stringify(`${event.method} ${event.path}`)}: ${reason}); answered 500 and kept serving`,
    { code: "CERTGATE_HANDLER_ERROR" },
  );
}
