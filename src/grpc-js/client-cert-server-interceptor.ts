import type { ServerHttp2Stream } from "node:http2";
import {
  ServerInterceptingCall,
  type Metadata,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
} from "@grpc/grpc-js";
import { createDecisionEngine, type ClientCertOptions, type Decision, type DecisionEngine } from "../decision.js";
import { refused } from "../decision-report.js";
import type { PeerCertificateContextValuesOptions } from "../proxy/forwarded-peer.js";
import { createCallPeerOf, type CallPeerOf } from "./call-peer.js";
import { assertCallShape, streamOf } from "./call-stream.js";
import { admitCall } from "./client-certificate-of.js";
import { createRefusalStatus, type PartialStatusObject, type RefusalStatus } from "./refusal-status.js";

// grpc-js 1.14 does not export the listener type by name.
type InterceptingServerListener = Parameters<ServerInterceptingCallInterface["start"]>[0];

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
}

interface Gate {
  readonly engine: DecisionEngine;
  readonly peerOf: CallPeerOf;
  readonly refusalStatus: RefusalStatus;
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
 * streaming calls alike. Handlers read the admitted certificate with
 * `clientCertificateOf(call)`. `onDecision` events say `via: "grpc-js"`.
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
  const engine = createDecisionEngine(options);
  const gate: Gate = {
    engine,
    peerOf: createCallPeerOf(options.forwardedCertificates),
    refusalStatus: createRefusalStatus(),
  };
  return (method, call) => new GatedCall(call, method.path, gate);
}

const unreadable = refused("invalid_certificate", undefined);

// States of a GatedCall, in order.
const deciding = 0;
const forwarded = 1;
const refusedState = 2;

/**
 * GatedCall stands between grpc-js and the handler: it holds the request
 * metadata back until the decision is made, so the handler starts (and asks
 * for the first message) only once the call is admitted. It is its own
 * listener on the call below it, and passes everything else straight
 * through. It extends grpc-js's `ServerInterceptingCall`, as the type of
 * `ServerInterceptor` asks, and overrides all of it.
 */
class GatedCall extends ServerInterceptingCall implements InterceptingServerListener {
  private listener: InterceptingServerListener | undefined;
  private state = deciding;
  private cancelled = false;
  private pendingHalfClose = false;

  constructor(
    private readonly next: ServerInterceptingCallInterface,
    private readonly procedure: string,
    private readonly gate: Gate,
  ) {
    super(next);
  }

  override start(listener: InterceptingServerListener): void {
    this.listener = listener;
    this.next.start(this);
  }

  onReceiveMetadata(metadata: Metadata): void {
    const { engine } = this.gate;
    const procedure = this.procedure;
    if (engine.needsProcedure && engine.isOpen(procedure)) {
      engine.report(undefined, procedure, "grpc-js");
      this.forward(metadata);
      return;
    }
    let result: Decision | Promise<Decision>;
    try {
      const stream: ServerHttp2Stream | undefined = streamOf(this.next);
      result = engine.decide(this.gate.peerOf(stream, metadata), procedure);
    } catch {
      // Nothing here throws by design; should it, the call is refused.
      result = unreadable;
    }
    if (result instanceof Promise) {
      result.then(
        (decision) => this.act(decision, metadata),
        () => this.act(unreadable, metadata),
      );
    } else {
      this.act(result, metadata);
    }
  }

  private act(decision: Decision, metadata: Metadata): void {
    const { engine } = this.gate;
    if (engine.reports) engine.report(decision, this.procedure, "grpc-js");
    if (this.cancelled) return;
    if (decision.kind === "admitted") {
      admitCall(this, decision.certificate);
      this.forward(metadata);
    } else if (decision.reportOnly === true) {
      this.forward(metadata);
    } else {
      this.state = refusedState;
      this.next.sendStatus(this.gate.refusalStatus(decision, this.procedure));
    }
  }

  private forward(metadata: Metadata): void {
    this.state = forwarded;
    const listener = this.listener as InterceptingServerListener;
    listener.onReceiveMetadata(metadata);
    if (this.pendingHalfClose) {
      this.pendingHalfClose = false;
      listener.onReceiveHalfClose();
    }
  }

  onReceiveMessage(message: unknown): void {
    // Messages are read only once the handler asked, after admission.
    if (this.state === forwarded) this.listener?.onReceiveMessage(message);
  }

  onReceiveHalfClose(): void {
    if (this.state === forwarded) this.listener?.onReceiveHalfClose();
    else if (this.state === deciding) this.pendingHalfClose = true;
  }

  onCancel(): void {
    this.cancelled = true;
    this.listener?.onCancel();
  }

  override sendMetadata(metadata: Metadata): void {
    this.next.sendMetadata(metadata);
  }
  override sendMessage(message: unknown, callback: () => void): void {
    this.next.sendMessage(message, callback);
  }
  override sendStatus(status: PartialStatusObject): void {
    this.next.sendStatus(status);
  }
  override startRead(): void {
    if (this.state === forwarded) this.next.startRead();
  }
  override getPeer(): string {
    return this.next.getPeer();
  }
  override getDeadline() {
    return this.next.getDeadline();
  }
  override getHost(): string {
    return this.next.getHost();
  }
  override getAuthContext() {
    return this.next.getAuthContext();
  }
  override getConnectionInfo() {
    return this.next.getConnectionInfo();
  }
  override getMetricsRecorder() {
    return this.next.getMetricsRecorder();
  }
}
