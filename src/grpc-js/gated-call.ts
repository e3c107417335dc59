import type { ServerHttp2Stream } from "node:http2";
import type { Metadata, ServerInterceptingCallInterface } from "@grpc/grpc-js";
import type { Certificate } from "../certificate.js";
import { refused, type Decision } from "../decision-report.js";
import { streamOf } from "./call-stream.js";
import type { Gate } from "./client-cert-server-interceptor.js";
import type { PartialStatusObject } from "./refusal-status.js";

// grpc-js 1.14 does not export the listener type by name.
type InterceptingServerListener = Parameters<ServerInterceptingCallInterface["start"]>[0];

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
 * through.
 */
export class GatedCall implements ServerInterceptingCallInterface, InterceptingServerListener {
  // The certificate that admitted the call, for clientCertificateOf: a
  // private field, which nothing but this class can set.
  #certificate: Certificate | undefined;
  private listener: InterceptingServerListener | undefined;
  private state = deciding;
  private cancelled = false;
  private pendingHalfClose = false;

  constructor(
    // Named as grpc-js names it, so that walks down the calls (streamOf,
    // clientCertificateOf) pass through this one too.
    readonly nextCall: ServerInterceptingCallInterface,
    private readonly procedure: string,
    private readonly gate: Gate,
  ) {}

  /** certificateOf returns the certificate that admitted `call`, if it is a GatedCall. */
  static certificateOf(call: object): Certificate | undefined {
    return #certificate in call ? (call as GatedCall).#certificate : undefined;
  }

  start(listener: InterceptingServerListener): void {
    this.listener = listener;
    this.nextCall.start(this);
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
      const stream: ServerHttp2Stream | undefined = streamOf(this.nextCall);
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
      this.#certificate = decision.certificate;
      this.forward(metadata);
    } else if (decision.reportOnly === true) {
      this.forward(metadata);
    } else {
      this.state = refusedState;
      this.nextCall.sendStatus(this.gate.refusalStatus(decision, this.procedure));
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

  sendMetadata(metadata: Metadata): void {
    this.nextCall.sendMetadata(metadata);
  }
  sendMessage(message: unknown, callback: () => void): void {
    this.nextCall.sendMessage(message, callback);
  }
  sendStatus(status: PartialStatusObject): void {
    this.nextCall.sendStatus(status);
  }
  startRead(): void {
    if (this.state === forwarded) this.nextCall.startRead();
  }
  getPeer(): string {
    return this.nextCall.getPeer();
  }
  getDeadline() {
    return this.nextCall.getDeadline();
  }
  getHost(): string {
    return this.nextCall.getHost();
  }
  getAuthContext() {
    return this.nextCall.getAuthContext();
  }
  getConnectionInfo() {
    return this.nextCall.getConnectionInfo();
  }
  getMetricsRecorder() {
    return this.nextCall.getMetricsRecorder();
  }
}
