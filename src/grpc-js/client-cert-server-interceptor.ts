import type { ServerInterceptingCall, ServerInterceptor } from "@grpc/grpc-js";
import { createDecisionCore, type ClientCertOptions, type DecisionCore } from "../decision/decision.js";
import type { PeerCertificateContextValuesOptions } from "../proxy/forwarded-peer.js";
import { createRefusedCallLimit, type RefusedCallLimit } from "../decision/refused-call-limit.js";
import { createCallPeerOf, type CallPeerOf } from "./call-peer.js";
import { assertCallShape, streamOf } from "./call-stream.js";
import { enforceCall, GatedCall, goesThrough } from "./gated-call.js";
import { createGrpcStatusOf, type GrpcStatusOf } from "./refusal-status.js";

/**
 * ClientCertServerInterceptorOptions configures
 * `createClientCertServerInterceptor`: the `ClientCertOptions` of the
 * Connect interceptor (store, validity, validation policy, rules by
 * procedure such as `/pkg.Service/Method`, `reportOnly`, `onDecision`), and
 * where forwarded certificates come from.
 */
export interface ClientCertServerInterceptorOptions extends ClientCertOptions {
  /**
   * Read the client certificate from a header set by a trusted proxy that
   * terminates TLS in front of this server, by the rule of
   * `createPeerCertificateContextValues` (the same options). Proxies are
   * recognized by the remote address of the connection (`cidrs`) or by their
   * own client certificate (`thumbprints`). By default, forwarding headers
   * are ignored and the connection's own certificate decides.
   */
  forwardedCertificates?: PeerCertificateContextValuesOptions;
  /**
   * After this many refused calls on one HTTP/2 connection, certgate closes
   * it gracefully (GOAWAY with NO_ERROR: calls in flight finish, new ones
   * must come on a new connection, which costs the client a TLS handshake).
   * `Infinity` never closes. Connections from a trusted proxy are never
   * closed (they carry other clients). The same option as on the Connect
   * adapters' fast refusal path. By default, 100.
   */
  maxRefusedCallsPerConnection?: number;
}

/** Gate is what every call of one interceptor shares. */
export interface Gate {
  readonly core: DecisionCore;
  readonly peerOf: CallPeerOf;
  readonly statusOf: GrpcStatusOf;
  readonly refusals: RefusedCallLimit;
}

/**
 * createClientCertServerInterceptor returns a grpc-js `ServerInterceptor`
 * that admits a call only when the client certificate of its TLS connection
 * passes the options' store and policy, as `createClientCertInterceptor` does
 * on Connect. A refused call ends with status 16 (`UNAUTHENTICATED`), or 7
 * (`PERMISSION_DENIED`) when identities refuse an otherwise valid
 * certificate, the same message as on Connect, and the
 * `certgate.v1.ClientCertificateError` detail in `grpc-status-details-bin`,
 * before the handler runs or any request message is read; unary and
 * streaming calls alike. The refused call's HTTP/2 stream is then reset with
 * NO_ERROR, so that nothing more of its body is read, and a connection is
 * closed with GOAWAY after `maxRefusedCallsPerConnection` refused calls.
 * Handlers read the admitted certificate with `clientCertificateOf(call)`.
 * `onDecision` events say `via: "grpc-js"`.
 *
 * The certificate is read once per HTTP/2 session; the decision is cached
 * per session until the store or the policy changes, so a certificate
 * deleted from the store is refused on the next call of an open connection.
 * Serve with `createServerCredentials`, which asks clients for certificates.
 * It throws at start-up for malformed options, and when the installed
 * grpc-js does not give its calls' HTTP/2 stream the way 1.14 does.
 *
 * @example
 * const server = new grpc.Server({
 *   interceptors: [createClientCertServerInterceptor({ store: createThumbprintStore("3AF2...9C") })],
 * });
 * server.addService(EchoService, handlers);
 * server.bindAsync("0.0.0.0:8443", createServerCredentials({ cert, key }), callback);
 */
export function createClientCertServerInterceptor(options: ClientCertServerInterceptorOptions): ServerInterceptor {
  assertCallShape();
  const gate: Gate = {
    core: createDecisionCore(options),
    peerOf: createCallPeerOf(options.forwardedCertificates),
    statusOf: createGrpcStatusOf(),
    refusals: createRefusedCallLimit(options.maxRefusedCallsPerConnection),
  };
  const readsMetadata = options.forwardedCertificates !== undefined;
  // grpc-js types an interceptor's result as its ServerInterceptingCall
  // class, but uses only the interface (server-interceptors.js,
  // getServerInterceptingCall): a call that goes through at once is handed
  // back as it came, with nothing in between; the others get a GatedCall.
  return (method, call) => {
    const procedure = method.path;
    if (readsMetadata) {
      return new GatedCall(call, procedure, gate, undefined) as unknown as ServerInterceptingCall;
    }
    // The peer is the connection's: the decision needs nothing the metadata
    // holds, and a warm connection has it cached.
    const stream = streamOf(call);
    const enforcement = enforceCall(gate, stream, undefined, procedure);
    if (!(enforcement instanceof Promise) && goesThrough(enforcement, stream)) {
      return call as ServerInterceptingCall;
    }
    return new GatedCall(call, procedure, gate, enforcement) as unknown as ServerInterceptingCall;
  };
}
