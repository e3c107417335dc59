import type { IncomingMessage } from "node:http";
import { createContextKey, type ContextValues, type HandlerContext } from "@connectrpc/connect";
import { nodeRequestOf, type NodeRequestLike } from "../core/peer-certificate.js";

// The Node request of an HTTP/1.x call, for the gate: set by certgate's
// context values, private to certgate.
const http1RequestKey = createContextKey<IncomingMessage | undefined>(undefined, {
  description: "certgate HTTP/1 request",
});

// How long a refused connection, half-closed and no longer read, is kept for
// the client to read the response before it is destroyed.
const closeGraceMs = 1000;

/**
 * withHttp1Request keeps the Node request of an HTTP/1.x call in `values`,
 * so that a refusal by the gate can close its connection
 * (`closeHttp1AfterRefusal`). HTTP/2 requests are left alone.
 */
export function withHttp1Request(req: NodeRequestLike, values: ContextValues): ContextValues {
  const raw = nodeRequestOf(req);
  if (raw.stream !== undefined || typeof raw.socket !== "object" || raw.socket === null) return values;
  return values.set(http1RequestKey, raw as unknown as IncomingMessage);
}

/**
 * closeHttp1AfterRefusal makes the response to a refused HTTP/1.x call close
 * its connection, instead of reading the request body the client may still
 * be sending (a refused upload could be any size, and HTTP/1.1 has no way
 * to stop one request but closing): it says `Connection: close`, and once
 * the response is written Node's HTTP server closes the connection, which
 * certgate does by half-closing it and reading nothing more, then destroying
 * it a second later (closing at once could make the client's TCP stack drop
 * the response). An HTTP/2 call is left alone: its stream is reset instead.
 */
export function closeHttp1AfterRefusal(context: HandlerContext): void {
  const req = context.values.get(http1RequestKey);
  if (req === undefined) return;
  try {
    context.responseHeader.set("connection", "close");
    // A request nobody reads is dumped (read to its end) by Node's server
    // once the response is written. Reading it, from here on, is left to
    // its own stream, which nobody drains: once its buffer is full, Node's
    // HTTP parser stops reading the socket, and it stays stopped.
    req.read(0);
    const socket = req.socket as IncomingMessage["socket"] & { destroySoon?: () => void };
    // Node's server calls destroySoon once a Connection: close response is written.
    socket.destroySoon = () => {
      socket.end(() => setTimeout(() => socket.destroy(), closeGraceMs).unref());
    };
  } catch {
    // The connection is gone already: nothing left to close.
  }
}
