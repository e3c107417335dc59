import type { Certificate } from "../certificate.js";
import { GatedCall } from "./gated-call.js";

// Handler call objects keep the intercepting call in `call`; interceptors
// added after certgate's wrap it, each keeping the next in `nextCall`.
const maxDepth = 64;

/**
 * clientCertificateOf returns the client certificate that certgate's
 * grpc-js interceptor admitted a call with, from the call object a handler
 * receives (unary and streaming alike). It is undefined when no certgate
 * interceptor admitted the call: an open procedure (`allow: "any"`), a
 * report-only refusal, or a server without the interceptor. Request
 * metadata cannot set it: only certgate's own call object holds it, in a
 * private field.
 *
 * @example
 * echo(call, callback) {
 *   const certificate = clientCertificateOf(call);
 *   callback(null, { message: `hello ${certificate?.subject}` });
 * }
 */
export function clientCertificateOf(call: object): Certificate | undefined {
  let c: unknown = (call as { call?: unknown }).call ?? call;
  for (let depth = 0; depth < maxDepth && typeof c === "object" && c !== null; depth++) {
    const certificate = GatedCall.certificateOf(c as object);
    if (certificate !== undefined) return certificate;
    c = (c as { nextCall?: unknown }).nextCall;
  }
  return undefined;
}
