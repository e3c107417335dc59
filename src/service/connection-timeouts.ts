import type * as http from "node:http";
import type * as http2 from "node:http2";
import type { TLSSocket } from "node:tls";

/**
 * closeIdleConnections closes the connections of `server` that have had no
 * call for `idleTimeoutMs`: an HTTP/2 session without open streams (with a
 * GOAWAY, so clients open a new one for the next call) and an HTTP/1.1
 * connection between requests. A connection that never sends a request
 * (or sends its headers too slowly) is idle from its handshake on. Calls in
 * progress, such as long watches, keep their connection open however long
 * they run. 0 turns it off.
 */
export function closeIdleConnections(server: http2.Http2SecureServer, idleTimeoutMs: number): void {
  if (idleTimeoutMs <= 0) {
    return;
  }
  server.on("session", (session: http2.ServerHttp2Session) => {
    const idle = createIdleTimer(idleTimeoutMs, () => session.close());
    session.on("stream", (stream: http2.ServerHttp2Stream) => {
      idle.begin();
      stream.once("close", idle.end);
    });
    session.once("close", idle.stop);
  });
  // HTTP/1.1 connections (allowHTTP1): the TLS socket, then its requests.
  const http1 = new WeakMap<TLSSocket, IdleTimer>();
  server.on("secureConnection", (socket: TLSSocket) => {
    if (socket.alpnProtocol === "h2") {
      return;
    }
    const idle = createIdleTimer(idleTimeoutMs, () => socket.destroy());
    http1.set(socket, idle);
    socket.once("close", idle.stop);
  });
  server.on(
    "request",
    (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => {
      if (req.httpVersionMajor === 2) {
        return;
      }
      const idle = http1.get(req.socket as TLSSocket);
      if (idle !== undefined) {
        idle.begin();
        res.once("close", idle.end);
      }
    },
  );
}

interface IdleTimer {
  /** A call began. */
  begin(): void;
  /** A call ended. */
  end(): void;
  stop(): void;
}

function createIdleTimer(ms: number, close: () => void): IdleTimer {
  let calls = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    timer = setTimeout(close, ms);
    timer.unref();
  };
  arm();
  return {
    begin() {
      calls++;
      clearTimeout(timer);
    },
    end() {
      calls--;
      if (calls === 0 && !stopped) {
        arm();
      }
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
