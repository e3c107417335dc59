import type { ServerHttp2Stream } from "node:http2";
import type { Metadata, ServerInterceptingCallInterface } from "@grpc/grpc-js";
import { refused, type Decision } from "../core/decision-report.js";
import { refusalOf, type EnforcedRefusal, type Enforcement } from "../core/enforcement.js";
import { stopRequestBody } from "../decision/refused-call-limit.js";
import { streamOf } from "./call-stream.js";
import type { Gate } from "./client-cert-server-interceptor.js";
import { admit } from "./client-certificate-of.js";
import type { PartialStatusObject } from "./refusal-status.js";

// grpc-js 1.14 does not export the listener type by name.
type InterceptingServerListener = Parameters<ServerInterceptingCallInterface["start"]>[0];

/**
 * enforceCall decides one call from its stream (and, with forwarded
 * certificates, its metadata), reporting the decision. It never throws: a
 * failure is a refusal.
 */
export function enforceCall(
  gate: Gate,
  stream: ServerHttp2Stream | undefined,
  metadata: Metadata | undefined,
  procedure: string,
): Enforcement | Promise<Enforcement> {
  try {
    const result = gate.core.enforce(gate.peerOf(stream, metadata), procedure, "grpc-js");
    return result instanceof Promise ? result.catch(() => unreadable(procedure)) : result;
  } catch {
    // Nothing here throws by design; should it, the call is refused.
    return unreadable(procedure);
  }
}

const unreadableDecision = refused("invalid_certificate", undefined) as Exclude<Decision, { kind: "admitted" }>;

function unreadable(procedure: string): EnforcedRefusal {
  return refusalOf(unreadableDecision, procedure);
}

/**
 * goesThrough tells whether a call goes on to its handler (admitted, or
 * passed: an open procedure, a report-only refusal) and, for an admitted
 * call, records its certificate for `clientCertificateOf`.
 */
export function goesThrough(enforcement: Enforcement, stream: ServerHttp2Stream | undefined): boolean {
  if (enforcement.kind === "admitted") {
    if (stream !== undefined) admit(stream, enforcement.certificate);
    return true;
  }
  return enforcement.kind === "passed";
}

// States of a GatedCall, in order.
const deciding = 0;
const forwarded = 1;
const refusedState = 2;

/**
 * GatedCall stands between grpc-js and the handler of a call that is not
 * admitted yet: it holds the request metadata back until the decision is
 * made (the first call of a connection waits for the store; with forwarded
 * certificates the decision needs the metadata), or ends a refused call when
 * the metadata arrives, so the handler starts, and asks for the first
 * message, only once the call is admitted. It is its own listener on the
 * call below it, and passes everything else straight through. Calls decided
 * at once and admitted get no GatedCall at all.
 */
export class GatedCall implements ServerInterceptingCallInterface, InterceptingServerListener {
  private listener: InterceptingServerListener | undefined;
  private state = deciding;
  private cancelled = false;
  private pendingHalfClose = false;

  /**
   * `enforcement` is a refusal already decided, a pending decision, or
   * undefined to decide when the metadata arrives.
   */
  constructor(
    // Named as grpc-js names it, so that walks down the calls (streamOf,
    // clientCertificateOf) pass through this one too.
    readonly nextCall: ServerInterceptingCallInterface,
    private readonly procedure: string,
    private readonly gate: Gate,
    private readonly enforcement: Enforcement | Promise<Enforcement> | undefined,
  ) {}

  start(listener: InterceptingServerListener): void {
    this.listener = listener;
    this.nextCall.start(this);
  }

  onReceiveMetadata(metadata: Metadata): void {
    const enforcement = this.enforcement;
    if (enforcement === undefined) {
      const stream = streamOf(this.nextCall);
      const result = enforceCall(this.gate, stream, metadata, this.procedure);
      if (result instanceof Promise) void result.then((e) => this.act(e, metadata, stream));
      else this.act(result, metadata, stream);
    } else if (enforcement instanceof Promise) {
      void enforcement.then((e) => this.act(e, metadata, streamOf(this.nextCall)));
    } else {
      this.act(enforcement, metadata, undefined);
    }
  }

  private act(enforcement: Enforcement, metadata: Metadata, stream: ServerHttp2Stream | undefined): void {
    const through = goesThrough(enforcement, stream);
    if (this.cancelled) return;
    if (through) {
      this.forward(metadata);
    } else {
      this.state = refusedState;
      this.refuse(enforcement as EnforcedRefusal, stream ?? streamOf(this.nextCall), metadata);
    }
  }

  // Sends the refusal status, then resets the stream (grpc-js leaves a
  // stream open, and reads its body, until the client ends its side), and
  // counts the refusal towards the connection's maxRefusedCallsPerConnection.
  private refuse(refusal: EnforcedRefusal, stream: ServerHttp2Stream | undefined, metadata: Metadata): void {
    // Interceptors before this one may have sent response headers: the
    // status then goes in trailers; otherwise it is a trailers-only response.
    const trailers = stream?.headersSent === true;
    if (stream !== undefined && trailers) stopRequestBody(stream, true);
    this.nextCall.sendStatus(this.gate.statusOf(refusal));
    if (stream === undefined) return;
    if (!trailers) stopRequestBody(stream, false);
    // A trusted proxy's connection carries other clients: never closed for one.
    // The peer is the one just decided on, from the session's (or the header's) cache.
    if (this.gate.peerOf(stream, metadata).source !== "proxy") this.gate.refusals.count(stream.session);
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
