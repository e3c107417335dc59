import * as http2 from "node:http2";

const { NGHTTP2_NO_ERROR } = http2.constants;

// The default of maxRefusedCallsPerConnection on every adapter.
const defaultMaxRefusedCallsPerConnection = 100;

/**
 * RefusedCallLimit counts the refused calls of each HTTP/2 connection, for
 * the adapters' `maxRefusedCallsPerConnection`.
 */
export interface RefusedCallLimit {
  /**
   * Counts one refused call on `session`, and closes the session with
   * GOAWAY when it reaches the bound. Calls without a session (HTTP/1.1)
   * are not counted; callers leave out calls a trusted proxy forwarded
   * (its connection carries other clients).
   */
  count(session: http2.Http2Session | undefined): void;
}

/**
 * createRefusedCallLimit returns the per-connection bound of refused calls:
 * after `max` of them (by default 100; `Infinity` never) a connection is
 * closed gracefully with GOAWAY, so that a client cannot refuse itself
 * forever on one connection, each refusal costing it no TLS handshake. It
 * throws a `TypeError` naming `option` for a bound that is not a whole
 * number of at least 1, or `Infinity`.
 */
export function createRefusedCallLimit(
  max: number | undefined,
  option = "options.maxRefusedCallsPerConnection",
): RefusedCallLimit {
  const bound = max ?? defaultMaxRefusedCallsPerConnection;
  if (bound !== Infinity && !(Number.isInteger(bound) && bound >= 1)) {
    throw new TypeError(`certgate: ${option} must be a whole number of at least 1, or Infinity, got ${String(max)}`);
  }
  if (bound === Infinity) return { count() {} };
  // Keyed by the session object: the count goes with the connection.
  const refused = new WeakMap<http2.Http2Session, number>();
  return {
    count(session) {
      if (session === undefined) return;
      const n = (refused.get(session) ?? 0) + 1;
      refused.set(session, n);
      if (n === bound) closeConnection(session);
    },
  };
}

// GOAWAY with NO_ERROR: calls in flight finish, new ones must come on a new
// connection; a client that ignores it is cut off after 5 seconds.
function closeConnection(session: http2.Http2Session): void {
  if (session.closed || session.destroyed) return;
  try {
    session.close();
    setTimeout(() => {
      if (!session.destroyed) session.destroy();
    }, 5000).unref();
  } catch {
    session.destroy();
  }
}

/**
 * stopRequestBody ends a refused call's HTTP/2 stream once its response is
 * complete, with RST_STREAM NO_ERROR, as RFC 9113 (8.1) lets a server that
 * answered before the request ended: the client stops sending, the server
 * reads nothing more of the body, and the stream's memory is freed at once
 * rather than when the client ends its side (a hostile client never does).
 * With `trailers`, call it before the trailers are queued: the stream is
 * reset once they are written. Without, call it once the whole response is
 * queued (such as a trailers-only gRPC status). Either way the reset waits
 * for the next turn of the event loop, so that it leaves in a write of its
 * own after the response (some clients, Go's among them, may drop a
 * response whose reset they read in the same batch of frames), and so that
 * a request end already received with the headers closes the stream without
 * one. A stream the client has ended is left alone.
 */
export function stopRequestBody(stream: http2.ServerHttp2Stream, trailers: boolean): void {
  const reset = () => {
    try {
      if (!stream.closed && !stream.destroyed && stream.state.remoteClose === 0) stream.close(NGHTTP2_NO_ERROR);
    } catch {
      // The session is gone already: nothing left to stop.
    }
  };
  if (trailers) {
    // The writer's own wantTrailers listener queues the trailers (at once, or
    // on setImmediate as Node's compatibility API does): reset after it.
    stream.once("wantTrailers", () => setImmediate(reset));
  } else {
    setImmediate(reset);
  }
}
