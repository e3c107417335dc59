import { constants as http2constants } from "node:http2";
import type { Http2ServerRequest, Http2ServerResponse, IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createHandlerContext, type ContextValues, type HandlerContext } from "@connectrpc/connect";
import { parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import {
  CertificateStoreService,
  WatchCertificatesRequestSchema,
  WatchCertificatesResponseSchema,
  type WatchCertificatesRequest,
  type WatchCertificatesResponse,
} from "../gen/certgate/v1/certificate_store_pb.js";

/**
 * GrpcWatchHandlerOptions configures `grpcWatchRequestHandler`.
 */
export interface GrpcWatchHandlerOptions {
  /** The WatchCertificates implementation Connect also serves. */
  readonly watch: (req: WatchCertificatesRequest, ctx: HandlerContext) => AsyncIterable<WatchCertificatesResponse>;
  /** The service's access gate, run on the request headers before the body is read. */
  readonly requestGate: (context: HandlerContext) => Promise<void>;
  /** The adapter's context values (certgate's `peerCertificateContextValues`). */
  readonly contextValues: (req: Http2ServerRequest) => ContextValues;
  /** The largest request accepted, in bytes. */
  readonly readMaxBytes: number;
  /** Aborted when the server shuts down: running watches end with its reason. */
  readonly shutdownSignal: AbortSignal;
}

const path = `/${CertificateStoreService.typeName}/${CertificateStoreService.method.watchCertificates.name}`;
const contentType = "application/grpc+proto";

/**
 * grpcWatchRequestHandler serves WatchCertificates over gRPC with binary
 * messages (what mirrors use) by writing each event to the HTTP/2 stream
 * directly, and hands every other request to `next` (Connect).
 *
 * A replica writes every change to every mirror watching it, so the cost per
 * watcher per event decides how fast a revocation reaches 500 API servers.
 * Connect's streaming pipeline spends most of that cost in its chain of
 * async iterables; here each event is one encode and one stream write. The
 * rest is Connect's own: its handler context (deadline, shutdown and
 * cancellation signals), the same request gate before the body is read, the
 * same implementation, and its gRPC trailer encoding for errors, so a client
 * sees what Connect would send. Requests it does not take (another protocol,
 * JSON, a compressed request, HTTP/1.1) go through Connect unchanged.
 */
export function grpcWatchRequestHandler(
  next: (req: Http2ServerRequest, res: Http2ServerResponse) => void,
  options: GrpcWatchHandlerOptions,
): (req: Http2ServerRequest, res: Http2ServerResponse) => void {
  return (req, res) => {
    if (!takes(req)) {
      next(req, res);
      return;
    }
    void serve(req, res, options);
  };
}

function takes(req: Http2ServerRequest): boolean {
  if (req.url !== path || req.method !== "POST" || req.httpVersionMajor !== 2) return false;
  const type = req.headers["content-type"];
  if (type !== "application/grpc" && type !== contentType) return false;
  const encoding = req.headers["grpc-encoding"];
  return encoding === undefined || encoding === "identity";
}

async function serve(req: Http2ServerRequest, res: Http2ServerResponse, options: GrpcWatchHandlerOptions) {
  const stream = res.stream;
  const timeout = parseTimeout(single(req.headers["grpc-timeout"]), Number.MAX_SAFE_INTEGER);
  const requestSignal = new AbortController();
  const onClose = () => requestSignal.abort(new ConnectError("operation was aborted", Code.Canceled));
  stream.once("close", onClose);
  const context = createHandlerContext({
    service: CertificateStoreService,
    method: CertificateStoreService.method.watchCertificates,
    protocolName: "grpc",
    requestMethod: "POST",
    url: `https://${req.headers[":authority"] ?? "localhost"}${path}`,
    ...(timeout.timeoutMs === undefined ? {} : { timeoutMs: timeout.timeoutMs }),
    shutdownSignal: options.shutdownSignal,
    requestSignal: requestSignal.signal,
    requestHeader: requestHeaders(req.headers),
    responseHeader: { "content-type": contentType },
    contextValues: options.contextValues(req),
  });
  let responded = false;
  const respond = () => {
    if (responded) return;
    responded = true;
    stream.respond(headerObject(context.responseHeader, { ":status": 200 }), { waitForTrailers: true });
  };
  let failure: ConnectError | undefined;
  try {
    if (timeout.error !== undefined) throw timeout.error;
    await options.requestGate(context);
    const request = await readRequest(req, options.readMaxBytes, context.signal);
    for await (const event of options.watch(request, context)) {
      if (context.signal.aborted) break;
      respond();
      if (!stream.write(frame(event))) await drained(stream, context.signal);
    }
    if (context.signal.aborted) throw context.signal.reason;
  } catch (error) {
    failure =
      error instanceof ConnectError
        ? error
        : new ConnectError("internal error", Code.Internal, undefined, undefined, error);
  } finally {
    stream.off("close", onClose);
    context.abort();
  }
  if (stream.destroyed || stream.closed) return;
  // A request refused or cut off before its body was read whole: after the
  // status, a reset tells the client to stop sending (one turn later, so
  // that the client reads the status first).
  if (!req.complete) {
    stream.once("finish", () => setImmediate(() => stream.close(http2constants.NGHTTP2_NO_ERROR)));
  }
  const trailer = setTrailerStatus(new Headers(context.responseTrailer), failure);
  if (!responded) {
    // Trailers-only: the status travels in the one HEADERS frame.
    responded = true;
    stream.respond(headerObject(context.responseHeader, headerObject(trailer, { ":status": 200 })), {
      endStream: true,
    });
    return;
  }
  // Node's compatibility response sends these when the stream asks for
  // trailers (it listens for "wantTrailers" itself).
  res.addTrailers(headerObject(trailer, {}));
  stream.end();
}

// The one request message: a 5-byte gRPC envelope (flags, length) and its
// bytes, read up to the limit and no further.
async function readRequest(
  req: Http2ServerRequest,
  readMaxBytes: number,
  signal: AbortSignal,
): Promise<WatchCertificatesRequest> {
  const chunks: Buffer[] = [];
  let size = 0;
  const limit = readMaxBytes + 5;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      throw new ConnectError(
        `message size is larger than configured readMaxBytes ${readMaxBytes}`,
        Code.ResourceExhausted,
      );
    }
    chunks.push(chunk);
    if (signal.aborted) throw signal.reason;
  }
  const body = Buffer.concat(chunks, size);
  if (body.length < 5) {
    throw new ConnectError("protocol error: missing input message for server-streaming method", Code.InvalidArgument);
  }
  const flags = body[0] as number;
  const length = body.readUInt32BE(1);
  if (flags !== 0) {
    throw new ConnectError("protocol error: received compressed message without grpc-encoding", Code.Internal);
  }
  if (body.length !== 5 + length) {
    throw new ConnectError(
      body.length < 5 + length
        ? "protocol error: promised more bytes than the request holds"
        : "protocol error: received extra input message for server-streaming method",
      Code.InvalidArgument,
    );
  }
  try {
    return fromBinary(WatchCertificatesRequestSchema, body.subarray(5));
  } catch (cause) {
    throw new ConnectError("parse binary: the request is not a WatchCertificatesRequest", Code.InvalidArgument, {
      cause,
    });
  }
}

// A change's events are the same objects for every watcher (see
// watch-stream.ts): each is encoded once, whatever the number of watchers.
const frames = new WeakMap<WatchCertificatesResponse, Buffer>();

function frame(event: WatchCertificatesResponse): Buffer {
  let out = frames.get(event);
  if (out !== undefined) return out;
  const bytes = toBinary(WatchCertificatesResponseSchema, event);
  out = Buffer.allocUnsafe(5 + bytes.length);
  out[0] = 0;
  out.writeUInt32BE(bytes.length, 1);
  out.set(bytes, 5);
  frames.set(event, out);
  return out;
}

function drained(stream: ServerHttp2Stream, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off("drain", done);
      stream.off("close", done);
      signal.removeEventListener("abort", done);
      resolve();
    };
    stream.on("drain", done);
    stream.on("close", done);
    signal.addEventListener("abort", done);
  });
}

function single(value: string | string[] | undefined): string | null {
  return typeof value === "string" ? value : null;
}

function requestHeaders(headers: IncomingHttpHeaders): Headers {
  const out = new Headers();
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(":") || value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) out.append(name, v);
    else out.append(name, value);
  }
  return out;
}

function headerObject(headers: Headers, into: Record<string, string | number>): Record<string, string | number> {
  headers.forEach((value, name) => {
    into[name] = value;
  });
  return into;
}
