import type * as http from "node:http";
import type * as http2 from "node:http2";

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;

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
