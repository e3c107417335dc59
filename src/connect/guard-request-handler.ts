import type * as http from "node:http";
import type * as http2 from "node:http2";

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
 * http2
 *   .createSecureServer(
 *     { cert, key, requestCert: true, rejectUnauthorized: false, allowHTTP1: true },
 *     guardRequestHandler(
 *       connectNodeAdapter({ routes, requestGate, contextValues: peerCertificateContextValues }),
 *     ),
 *   )
 *   .listen(8443);
 */
export function guardRequestHandler<Req extends NodeRequest, Res extends NodeResponse, Rest extends unknown[] = []>(
  handler: (req: Req, res: Res, ...rest: Rest) => void,
  options: GuardRequestHandlerOptions = {},
): (req: Req, res: Res, ...rest: Rest) => void {
  const onError = options.onError ?? warnOnce;
  return (req, res, ...rest) => {
    try {
      handler(req, res, ...rest);
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

/**
 * isMalformedRequest tells whether connect-node cannot represent a request:
 * it has no authority (an HTTP/1.0 request without `Host`), or its
 * `:authority` or `Host` does not make a valid URL with its path (an
 * unbracketed IPv6 address such as `::1:8443`). connect-node's request
 * conversion, which connect-express and connect-fastify 2.2.0 use too,
 * throws on such a request; `guardRequestHandler` answers it with 400.
 *
 * Use it where a framework lets the application answer before Connect's
 * adapter sees the request. Fastify catches the throw itself, answers an
 * empty 200 and logs a stack trace for each such request; check in an
 * `onRequest` hook next to `fastifyConnectPlugin` instead (Fastify passes
 * Node's request as `request.raw`).
 *
 * @example
 * await server.register(async (connect) => {
 *   connect.addHook("onRequest", async (request, reply) => {
 *     if (isMalformedRequest(request.raw)) return reply.code(400).send("malformed request\n");
 *   });
 *   await connect.register(fastifyConnectPlugin, { routes, requestGate, contextValues });
 * });
 */
export function isMalformedRequest(req: NodeRequest): boolean {
  // What connect-node needs to build the request URL: an authority
  // (`:authority` or `Host`) that makes a valid URL.
  const authority = "authority" in req ? req.authority : req.headers.host;
  if (typeof authority !== "string" || authority === "") return true;
  return !URL.canParse(req.url ?? "/", `https://${authority}`);
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
