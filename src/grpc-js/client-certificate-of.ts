import type { ServerHttp2Stream } from "node:http2";
import type { ServerInterceptingCallInterface } from "@grpc/grpc-js";
import type { Certificate } from "../core/certificate.js";
import { streamOf } from "./call-stream.js";

// The admitted certificate is kept on the call's HTTP/2 stream, under a
// symbol no other module holds: request metadata cannot reach it, and a
// property write costs less per call than a WeakMap entry.
const admitted = Symbol("certgate admitted certificate");

interface AdmittedStream {
  [admitted]?: Certificate;
}

/**
 * admit records the certificate that admitted the call on `stream`, for
 * `clientCertificateOf`.
 */
export function admit(stream: ServerHttp2Stream, certificate: Certificate): void {
  (stream as AdmittedStream)[admitted] = certificate;
}

/**
 * clientCertificateOf returns the client certificate that certgate's
 * grpc-js interceptor admitted a call with, from the call object a handler
 * receives (unary and streaming alike). It is undefined when no certgate
 * interceptor admitted the call: an open procedure (`allow: "any"`), a
 * report-only refusal, or a server without the interceptor. Request
 * metadata cannot set it.
 *
 * @example
 * echo(call, callback) {
 *   const certificate = clientCertificateOf(call);
 *   callback(null, { message: `hello ${certificate?.subject}` });
 * }
 */
export function clientCertificateOf(call: object): Certificate | undefined {
  // Handler call objects keep the intercepting call in `call`.
  const intercepting = ((call as { call?: unknown }).call ?? call) as ServerInterceptingCallInterface;
  const stream = streamOf(intercepting) as (ServerHttp2Stream & AdmittedStream) | undefined;
  return stream?.[admitted];
}
