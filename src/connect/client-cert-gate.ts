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
    // Under the fast path, the call's decision is made once: there, or here
    // and handed back to it.
    const decided =
      probe === undefined
        ? undefined
        : noteGateCall(core, procedureName(context), context.values.get(peerCertificateKey));
    try {
      const pending = enforceCall(core, context, context.values, "gate", decided);
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
 * peer its gate saw, and returns the call's decision: the one handed to
 * `probeGate` for this procedure and peer, or else one made now (undefined
 * for an open procedure, and outside a probe of `core`). A gate that
 * enforces the returned decision decides each call once with the fast path.
 * It must be called synchronously when the gate runs.
 */
export function noteGateCall(
  core: GateCore,
  procedure: string,
  peer: PeerCertificate | undefined,
): Decision | Promise<Decision> | undefined {
  const p = probe;
  if (p === undefined || p.core !== core) return undefined;
  p.procedure = procedure;
  p.peer = peer;
  const handed = p.handed;
  p.decision =
    handed !== undefined && handed.procedure === procedure && handed.peer === peer
      ? handed.decision
      : core.isOpen(procedure)
        ? undefined
        : core.decide(peer, core.needsProcedure ? procedure : undefined);
  return p.decision;
}

/**
 * GateProbe is what a gate tells `probeGate` of a call it saw: the
 * procedure Connect routed the request to, the peer its context values
 * hold, and the call's decision. `procedure` is undefined when the gate was
 * not reached; `decision` when the procedure is open.
 */
export interface GateProbe {
  readonly core: GateCore;
  procedure: string | undefined;
  peer: PeerCertificate | undefined;
  decision: Decision | Promise<Decision> | undefined;
  /** The decision handed to the gate, if any. */
  readonly handed: GateDecision | undefined;
}

/**
 * GateDecision is a decision the fast path made of a call before handing it
 * to the adapter, for the gate to enforce rather than decide again.
 */
export interface GateDecision {
  readonly procedure: string;
  readonly peer: PeerCertificate;
  readonly decision: Decision | Promise<Decision>;
}

let probe: GateProbe | undefined;

/**
 * probeGate runs `handle` (a Node request handler called with one request)
 * and returns what the gate of `core` saw of it, handing the gate `decided`
 * when it sees the same procedure and peer. Connect calls the gate
 * synchronously from the request handler, so a gate that runs for this
 * request runs inside `handle`.
 */
export function probeGate(core: GateCore, handle: () => void, decided?: GateDecision): GateProbe {
  const p: GateProbe = { core, procedure: undefined, peer: undefined, decision: undefined, handed: decided };
  const outer = probe;
  probe = p;
  try {
    handle();
  } finally {
    probe = outer;
  }
  return p;
}
