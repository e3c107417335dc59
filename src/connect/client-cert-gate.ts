import type { HandlerContext } from "@connectrpc/connect";
import { createDecisionCore, procedureName, type ClientCertOptions, type DecisionCore } from "../decision/decision.js";
import type { PeerCertificate } from "../core/peer-certificate.js";
import { peerCertificateKey } from "./context-values.js";
import { enforceCall } from "./enforce-call.js";

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
 * turn away. On a warm connection it decides synchronously. Wrap the adapter
 * with `createFastRefusalHandler` to answer refused calls before Connect
 * builds anything for them.
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
    const p = probe;
    if (p !== undefined && p.core === core) {
      p.procedure = procedureName(context);
      p.peer = context.values.get(peerCertificateKey);
    }
    try {
      return enforceCall(core, context, context.values, "gate");
    } catch (error) {
      // A refusal is handed over as a rejected promise, not thrown: Connect
      // then builds its error response from a microtask, outside the deep
      // stack of the HTTP/2 request event, which makes refusals cheaper.
      return Promise.reject(error);
    }
  };
  cores.set(gate, core);
  return gate;
}

// The decision core of each gate, for createFastRefusalHandler: the fast
// path decides on the same core, so that both agree and share the cache.
const cores = new WeakMap<ClientCertGate, DecisionCore>();

/**
 * gateCoreOf returns the decision core of a gate made by
 * `createClientCertGate`, or undefined for any other function.
 */
export function gateCoreOf(gate: unknown): DecisionCore | undefined {
  return typeof gate === "function" ? cores.get(gate as ClientCertGate) : undefined;
}

/**
 * GateProbe is what a gate tells `probeGate` of a call it saw: the
 * procedure Connect routed the request to and the peer its context values
 * hold. `procedure` is undefined when the gate was not reached.
 */
export interface GateProbe {
  readonly core: DecisionCore;
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
export function probeGate(core: DecisionCore, handle: () => void): GateProbe {
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
