import type { HandlerContext } from "@connectrpc/connect";
import { createDecisionCore, procedureName, type ClientCertOptions } from "../decision/decision.js";
import type { Decision } from "../core/decision-report.js";
import type { PeerCertificate } from "../core/peer-certificate.js";
import { peerCertificateKey } from "./context-values.js";
import { enforceCall } from "./enforce-call.js";
import { closeHttp1AfterRefusal } from "./http1-refusal.js";

/**
 * ClientCertGate is a Connect `requestGate`: it runs once the request headers
 * are in, before any of the body is read.
 */
export type ClientCertGate = (context: HandlerContext) => void | Promise<void>;

/**
 * createClientCertGate returns the decision of `createClientCertInterceptor`
 * as a Connect `requestGate` (Connect 2.2 and later): a refused call is
 * answered with `Code.Unauthenticated` (or `Code.PermissionDenied`, see the
 * interceptor) without reading, decompressing or parsing its body, which makes a flood of unauthenticated calls cheap to
 * turn away. On a warm connection it decides synchronously. Over HTTP/1.x
 * (with certgate's `contextValues`), the refusal says `Connection: close`
 * and closes the connection instead of reading the rest of the body. Wrap
 * the adapter with `createFastRefusalHandler` to answer refused calls
 * before Connect builds anything for them.
 *
 * @example
 * connectNodeAdapter({
 *   routes,
 *   requestGate: createClientCertGate({ store }),
 *   contextValues: peerCertificateContextValues,
 * });
 */
export function createClientCertGate(options: ClientCertOptions): ClientCertGate {
  const core = createDecisionCore(options);
  const gate: ClientCertGate = (context) => {
    if (probe !== undefined) noteGateCall(core, procedureName(context), context.values.get(peerCertificateKey));
    try {
      const pending = enforceCall(core, context, context.values, "gate");
      return pending === undefined
        ? undefined
        : pending.catch((error: unknown) => {
            closeHttp1AfterRefusal(context);
            throw error;
          });
    } catch (error) {
      closeHttp1AfterRefusal(context);
      // A refusal is handed over as a rejected promise, not thrown: Connect
      // then builds its error response from a microtask, outside the deep
      // stack of the HTTP/2 request event, which makes refusals cheaper.
      return Promise.reject(error);
    }
  };
  registerGateCore(gate, core);
  return gate;
}

/**
 * GateCore is what `createFastRefusalHandler` needs of a gate's decision:
 * the same decision the gate makes, without reporting it, and the report.
 * A `DecisionCore` is one; the store service's access gate has its own.
 */
export interface GateCore {
  /** Decides a call to `procedure` on the peer's connection, as the gate would. */
  decide(peer: PeerCertificate | undefined, procedure?: string): Decision | Promise<Decision>;
  /** Whether the decision depends on the procedure. */
  readonly needsProcedure: boolean;
  /** Whether the gate lets any call to `procedure` through. */
  isOpen(procedure: string): boolean;
  /** Reports one call's decision as the gate would (`onDecision`, metrics). */
  report(decision: Decision | undefined, procedure: string, via: "gate"): void;
}

// The decision core of each gate, for createFastRefusalHandler: the fast
// path decides on the same core, so that both agree and share the cache.
const cores = new WeakMap<object, GateCore>();

/**
 * registerGateCore tells `createFastRefusalHandler` which decision a gate
 * makes. The gate must call `noteGateCall` with the same core for each call.
 */
export function registerGateCore(gate: (context: HandlerContext) => void | Promise<void>, core: GateCore): void {
  cores.set(gate, core);
}

/**
 * gateCoreOf returns the decision core of a gate made by
 * `createClientCertGate` (or registered), or undefined for any other function.
 */
export function gateCoreOf(gate: unknown): GateCore | undefined {
  return typeof gate === "function" ? cores.get(gate) : undefined;
}

/**
 * noteGateCall tells a running `probeGate` of `core` which procedure and
 * peer its gate saw; it must be called synchronously when the gate runs.
 */
export function noteGateCall(core: GateCore, procedure: string, peer: PeerCertificate | undefined): void {
  const p = probe;
  if (p !== undefined && p.core === core) {
    p.procedure = procedure;
    p.peer = peer;
  }
}

/**
 * GateProbe is what a gate tells `probeGate` of a call it saw: the
 * procedure Connect routed the request to and the peer its context values
 * hold. `procedure` is undefined when the gate was not reached.
 */
export interface GateProbe {
  readonly core: GateCore;
  procedure: string | undefined;
  peer: PeerCertificate | undefined;
}

let probe: GateProbe | undefined;

/**
 * probeGate runs `handle` (a Node request handler called with one request)
 * and returns what the gate of `core` saw of it. Connect calls the gate
 * synchronously from the request handler, so a gate that runs for this
 * request runs inside `handle`.
 */
export function probeGate(core: GateCore, handle: () => void): GateProbe {
  const p: GateProbe = { core, procedure: undefined, peer: undefined };
  const outer = probe;
  probe = p;
  try {
    handle();
  } finally {
    probe = outer;
  }
  return p;
}
