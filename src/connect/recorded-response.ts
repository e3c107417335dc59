// The responses of the fast refusal path: Connect's own refusal, recorded
// once and replayed byte for byte.
import type * as http2 from "node:http2";
import { stopRequestBody } from "../decision/refused-call-limit.js";

/**
 * RecordedResponse is one response as Connect wrote it, replayed as is by
 * the fast refusal path for requests of the same shape.
 */
export interface RecordedResponse {
  readonly status: number;
  readonly headers: http2.OutgoingHttpHeaders;
  readonly body: Buffer | undefined;
  readonly trailers: http2.OutgoingHttpHeaders;
}

/**
 * ResponseRecording is a response being recorded: `keep` hands it, once
 * complete, to `store` (when it is a whole answer of status 200, 401 or
 * 403); `discard` drops it.
 */
export interface ResponseRecording {
  discard(): void;
  keep(store: (response: RecordedResponse) => void): void;
}

/**
 * recordResponse records what Connect writes through the compatibility API
 * for this one response (connect-node writes with writeHead, write,
 * addTrailers, end), passing every call on.
 */
export function recordResponse(res: http2.Http2ServerResponse): ResponseRecording {
  let status = 0;
  let headers: http2.OutgoingHttpHeaders | undefined;
  const chunks: Buffer[] = [];
  let trailers: http2.OutgoingHttpHeaders = {};
  let broken = false;
  let store: ((response: RecordedResponse) => void) | undefined;
  let discarded = false;
  const own = res as unknown as Record<string, unknown>;
  const { writeHead, write, addTrailers, end } = res;
  const take = (chunk: unknown) => {
    if (typeof chunk === "string") chunks.push(Buffer.from(chunk));
    else if (chunk instanceof Uint8Array) chunks.push(Buffer.from(chunk));
    else if (chunk !== undefined && typeof chunk !== "function") broken = true;
  };
  own.writeHead = function (this: unknown, code: number, ...rest: unknown[]) {
    status = code;
    const h = rest.find((r) => typeof r === "object" && r !== null);
    headers = h === undefined ? {} : { ...(h as http2.OutgoingHttpHeaders) };
    return (writeHead as (...a: unknown[]) => unknown).call(this, code, ...rest);
  };
  own.write = function (this: unknown, chunk: unknown, ...rest: unknown[]) {
    take(chunk);
    return (write as (...a: unknown[]) => unknown).call(this, chunk, ...rest);
  };
  own.addTrailers = function (this: unknown, t: http2.OutgoingHttpHeaders) {
    trailers = { ...trailers, ...t };
    return (addTrailers as (...a: unknown[]) => unknown).call(this, t);
  };
  own.end = function (this: unknown, chunk?: unknown, ...rest: unknown[]) {
    take(chunk);
    if (
      store !== undefined &&
      !discarded &&
      !broken &&
      headers !== undefined &&
      (status === 200 || status === 401 || status === 403)
    ) {
      store({
        status,
        headers,
        body: chunks.length === 0 ? undefined : Buffer.concat(chunks),
        trailers,
      });
    }
    store = undefined;
    return (end as (...a: unknown[]) => unknown).call(this, chunk, ...rest);
  };
  return {
    discard() {
      discarded = true;
    },
    keep(s) {
      store = s;
    },
  };
}

/**
 * replayResponse writes a recorded response through the same compatibility
 * API calls as connect-node (headers, body, trailers), then stops an upload
 * the client is still sending with RST_STREAM NO_ERROR once the trailers are
 * out, as connect-node does.
 */
export function replayResponse(res: http2.Http2ServerResponse, response: RecordedResponse): void {
  const stream = res.stream;
  try {
    stopRequestBody(stream, true);
    res.writeHead(response.status, response.headers);
    res.addTrailers(response.trailers);
    if (response.body === undefined) res.end();
    else res.end(response.body);
  } catch {
    // The client reset the stream in the meantime: nothing left to answer.
    if (!stream.destroyed) stream.destroy();
  }
}
