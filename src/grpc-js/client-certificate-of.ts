import type { Certificate } from "../certificate.js";

// Admitted calls, keyed by the call object certgate's interceptor made: no
// request metadata can reach a WeakMap entry.
const admitted = new WeakMap<object, Certificate>();

// Handler call objects keep the intercepting call in `call`; interceptors
// added after certgate's wrap it, each keeping the next in `nextCall`.
const maxDepth = 64;

/**
 * admitCall records the certificate that admitted a call, for
 * `clientCertificateOf`.
 */
export function admitCall(call: object, certificate: Certificate): void {
  admitted.set(call, certificate);
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
  let c: unknown = (call as { call?: unknown }).call ?? call;
  for (let depth = 0; depth < maxDepth && typeof c === "object" && c !== null; depth++) {
    const certificate = admitted.get(c as object);
    if (certificate !== undefined) return certificate;
    c = (c as { nextCall?: unknown }).nextCall;
  }
  return undefined;
}
