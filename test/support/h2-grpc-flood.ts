// A hostile gRPC client on one HTTP/2 connection: raw node:http2 streams
// that send their request headers and a message and never end their side,
// as a flood of refused calls does, and large uploads counted by the byte.
import * as http2 from "node:http2";
import { grpcFrame } from "./harness.js";

/** How one raw gRPC stream ended, as the client saw it. */
export interface RawGrpcStream {
  /** grpc-status of the response (trailers-only or trailers), if any came. */
  grpcStatus: string | undefined;
  /** Response message bytes received. */
  body: Buffer;
  /** Whether the stream has closed on the client (both sides done, or reset). */
  closed: boolean;
  /** The RST_STREAM code it closed with (0, NO_ERROR, for a full response and an orderly close). */
  rstCode: number | undefined;
  /** Request bytes the client had handed to the stream. */
  sent: number;
  /** Whether the client ended its side (END_STREAM) itself. */
  ended: boolean;
}

/** One client HTTP/2 session with counters. */
export interface FloodSession {
  readonly session: http2.ClientHttp2Session;
  /** GOAWAY frames received. */
  goaways(): number;
  /** Streams opened so far and not closed yet. */
  open(): number;
  /**
   * Opens a gRPC call to `path` that sends one message and does not end
   * its side unless `end` is true.
   */
  call(path: string, options?: { text?: string; end?: boolean; headers?: Record<string, string> }): RawGrpcStream;
  /**
   * Opens a gRPC call to `path` and sends up to `total` bytes of one huge
   * message, honouring flow control, until the stream closes: as a hostile
   * client does, it goes on sending after the response.
   */
  upload(path: string, total: number): RawGrpcStream;
  close(): Promise<void>;
}

/** openFloodSession connects to 127.0.0.1:`port` with TLS, with a client certificate or none. */
export function openFloodSession(port: number, tls: { ca: string; cert?: string; key?: string }): FloodSession {
  const session = http2.connect(`https://127.0.0.1:${port}`, {
    ca: tls.ca,
    servername: "localhost",
    ...(tls.cert === undefined ? {} : { cert: tls.cert, key: tls.key }),
  });
  session.on("error", () => {});
  let goaways = 0;
  let open = 0;
  session.on("goaway", () => goaways++);

  function start(
    path: string,
    headers: Record<string, string> = {},
  ): { stream: http2.ClientHttp2Stream; result: RawGrpcStream } {
    const stream = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      ...headers,
    });
    open++;
    const result: RawGrpcStream = {
      grpcStatus: undefined,
      body: Buffer.alloc(0),
      closed: false,
      rstCode: undefined,
      sent: 0,
      ended: false,
    };
    stream.on("response", (h) => {
      if (h["grpc-status"] !== undefined) result.grpcStatus = String(h["grpc-status"]);
    });
    stream.on("trailers", (t) => {
      if (t["grpc-status"] !== undefined) result.grpcStatus = String(t["grpc-status"]);
    });
    stream.on("data", (d: Buffer) => (result.body = Buffer.concat([result.body, d])));
    stream.on("error", () => {});
    stream.on("close", () => {
      open--;
      result.closed = true;
      result.rstCode = stream.rstCode;
    });
    return { stream, result };
  }

  return {
    session,
    goaways: () => goaways,
    open: () => open,
    call(path, options = {}) {
      const { stream, result } = start(path, options.headers);
      const frame = grpcFrame(options.text ?? "x");
      result.sent = frame.length;
      if (options.end) {
        result.ended = true;
        stream.end(frame);
      } else {
        stream.write(frame);
      }
      return result;
    },
    upload(path, total) {
      const { stream, result } = start(path);
      const header = Buffer.alloc(5);
      header.writeUInt32BE(total - 5, 1);
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      stream.write(header);
      result.sent = header.length;
      const stop = () => result.closed || stream.destroyed;
      const pump = () => {
        while (!stop() && result.sent < total) {
          const n = Math.min(chunk.length, total - result.sent);
          result.sent += n;
          if (!stream.write(chunk.subarray(0, n))) {
            stream.once("drain", pump);
            return;
          }
        }
        if (!stop()) {
          result.ended = true;
          stream.end();
        }
      };
      pump();
      return result;
    },
    close: () =>
      new Promise<void>((resolve) => {
        if (session.destroyed) return resolve();
        session.once("close", () => resolve());
        session.destroy();
      }),
  };
}
