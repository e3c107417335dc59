import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import { createDecide, procedureName, type Decide } from "../decision/decision.js";
import { refused, refusedAs, reportDecision, type Decision, type DecisionEvent } from "../core/decision-report.js";
import { enforcementOf } from "../core/enforcement.js";
import type { PeerCertificate } from "../core/peer-certificate.js";
import { refusals } from "../core/refusal-reasons.js";
import { clientCertificateKey, peerCertificateKey } from "../connect/context-values.js";
import { noteGateCall, registerGateCore, type GateCore } from "../connect/client-cert-gate.js";
import { closeHttp1AfterRefusal } from "../connect/http1-refusal.js";
import { refusalError } from "../connect/refusal-error.js";
import type { CertificateStore } from "../core/store.js";
import { createThumbprintStore } from "../stores/thumbprint-store.js";
import { createUnionStore } from "./union-store.js";

/**
 * Role is what a client certificate may do with the certificate store
 * service: an `admin` may call every RPC, a `reader` every RPC that changes
 * nothing (Get, List, Verify, Watch).
 */
export type Role = "admin" | "reader";

/**
 * RoleMembers names the certificates that have a role, by thumbprint and/or
 * by store. A certificate has the role when any of them admits it.
 */
export interface RoleMembers {
  /**
   * SHA-1 or SHA-256 thumbprints, in any spelling people paste (see
   * `normalizeThumbprint`); a malformed one throws at start-up.
   * By default, none.
   */
  thumbprints?: Iterable<string>;
  /**
   * Stores whose admitted certificates have the role, such as a directory
   * store over a folder of admin certificates. The service does not close
   * them. By default, none.
   */
  stores?: readonly CertificateStore[];
}

/**
 * AccessOptions says which client certificates may call the certificate
 * store service, and what they may call.
 */
export interface AccessOptions {
  /** The certificates that may call every RPC. By default, none. */
  admin?: RoleMembers;
  /** The certificates that may call Get, List, Verify and Watch. By default, none. */
  reader?: RoleMembers;
  /**
   * Refuse client certificates whose chain Node's TLS layer did not verify
   * against the server's `ca` (`socket.authorized`), whatever list they are
   * on. Set it when the TLS server is created with the client CA as `ca`;
   * `createCertificateStoreServer` does both when given `clientCa`.
   * By default, false.
   */
  requireTrustedChain?: boolean;
  /**
   * The current time, for the validity window of client certificates.
   * By default, `Date.now`.
   */
  clock?: () => number | Date;
  /**
   * How long to wait for a role's store before refusing, in milliseconds.
   * By default, 5000.
   */
  lookupTimeoutMs?: number;
  /**
   * Called once per call with the decision, for logs and metrics; a client
   * known but not allowed the call is refused with reason
   * `permission_denied`. By default, nothing is called.
   */
  onDecision?: (event: DecisionEvent) => void;
}

/**
 * clientRoleKey is the context key under which the service's access gate
 * leaves the role of an admitted client, for handlers and interceptors.
 */
export const clientRoleKey = createContextKey<Role | undefined>(undefined, {
  description: "certgate certificate store role",
});

/**
 * AccessGate is the request gate that protects the service, and what it holds.
 */
export interface AccessGate {
  /** The Connect `requestGate`. */
  readonly requestGate: (context: HandlerContext) => Promise<void>;
  /**
   * Decides again for a call that is already running, such as a watch, so
   * that a removed reader stops hearing changes; throws the refusal.
   * Admissions are not reported to `onDecision` (one per call is enough).
   */
  readonly recheck: (context: HandlerContext) => Promise<void>;
  /** Releases the thumbprint stores the gate made; not the given stores. */
  close(): Promise<void>;
}

/**
 * createAccessGate builds the request gate of the certificate store service
 * on the decision core: one decision per role, each cached per connection
 * until its store changes. The gate runs before the request body is read.
 *
 * - `Code.Unauthenticated` for a call without a certificate, with an
 *   unreadable, expired or not yet valid one, one not on any list, one whose
 *   chain is not trusted (with `requireTrustedChain`), or when a role's store
 *   cannot answer (fail closed);
 * - `Code.PermissionDenied` for a reader calling a mutating RPC.
 *
 * Messages never say which certificates are on the lists.
 */
export function createAccessGate(options: AccessOptions, isMutating: (method: string) => boolean): AccessGate {
  const owned: CertificateStore[] = [];
  const admin = roleStore("admin", options.admin, owned);
  const reader = roleStore("reader", options.reader, owned);
  if (admin === undefined && reader === undefined) {
    throw new TypeError(
      "certificate store service: no admin or reader certificates configured (thumbprints or stores); every call would be refused",
    );
  }
  const common = {
    clock: options.clock,
    lookupTimeoutMs: options.lookupTimeoutMs,
  };
  const decideAdmin = admin === undefined ? undefined : createDecide({ ...common, store: admin });
  const decideReader = reader === undefined ? undefined : createDecide({ ...common, store: reader });
  const requireTrustedChain = options.requireTrustedChain ?? false;
  const { onDecision } = options;

  function decide(d: Decide | undefined, peer: PeerCertificate | undefined): Decision | Promise<Decision> {
    if (d !== undefined) {
      return d(peer);
    }
    return refused("not_allowed", peer?.certificate);
  }

  interface Access {
    readonly decision: Decision;
    readonly role?: Role;
  }

  // The one decision of the access gate, synchronous on a warm connection
  // (as the fast refusal path needs): admin first, then reader for what
  // changes nothing; a reader calling a mutating RPC is PermissionDenied.
  function access(peer: PeerCertificate | undefined, method: string): Access | Promise<Access> {
    if (requireTrustedChain && peer?.certificate !== undefined && !peer.authorized) {
      return { decision: refusedAs(refusals.untrusted_chain, peer.certificate) };
    }
    const asAdmin = decide(decideAdmin, peer);
    return asAdmin instanceof Promise
      ? asAdmin.then((a) => afterAdmin(a, peer, method))
      : afterAdmin(asAdmin, peer, method);
  }

  function afterAdmin(asAdmin: Decision, peer: PeerCertificate | undefined, method: string): Access | Promise<Access> {
    if (asAdmin.kind === "admitted") {
      return { decision: asAdmin, role: "admin" };
    }
    if (asAdmin.kind === "refused" && asAdmin.reason !== "not_allowed") {
      // No certificate, unreadable, expired, not yet valid: no role helps.
      return { decision: asAdmin };
    }
    const asReader = decide(decideReader, peer);
    return asReader instanceof Promise
      ? asReader.then((r) => afterReader(asAdmin, r, method))
      : afterReader(asAdmin, asReader, method);
  }

  function afterReader(asAdmin: Decision, asReader: Decision, method: string): Access {
    if (asReader.kind === "admitted" && !isMutating(method)) {
      return { decision: asReader, role: "reader" };
    }
    if (asAdmin.kind === "error") {
      // The admin list could not be read: not knowing, refuse as unknown.
      return { decision: asAdmin };
    }
    if (asReader.kind === "admitted") {
      return {
        decision: refusedAs(
          refusals.permission_denied,
          asReader.certificate,
          `${method} needs an admin client certificate`,
        ),
      };
    }
    return { decision: asReader };
  }

  // The access behind the decision core.decide returned last: the fast path
  // hands that decision to the gate (synchronously, see noteGateCall), which
  // then enforces it with its role rather than deciding again.
  let lastDecided:
    | { readonly decision: Decision | Promise<Decision>; readonly access: Access | Promise<Access> }
    | undefined;
  // The same decision for createFastRefusalHandler (guardRequestHandler's
  // `gate`), so that refused calls to the service can skip Connect.
  const core: GateCore = {
    needsProcedure: true,
    isOpen: () => false,
    decide(peer, procedure) {
      const method = (procedure ?? "").slice((procedure ?? "").lastIndexOf("/") + 1);
      const a = access(peer, method);
      const decision = a instanceof Promise ? a.then((x) => x.decision) : a.decision;
      lastDecided = { decision, access: a };
      return decision;
    },
    report(decision, procedure, via) {
      if (decision !== undefined) reportDecision(onDecision, decision, procedure, via);
    },
  };

  async function gate(context: HandlerContext, quiet = false): Promise<void> {
    const procedure = procedureName(context);
    const peer = context.values.get(peerCertificateKey);
    const handed = quiet ? undefined : noteGateCall(core, procedure, peer);
    const decided = handed !== undefined && lastDecided?.decision === handed ? lastDecided.access : undefined;
    lastDecided = undefined;
    // The one enforcement path of every server: report, then admit or refuse
    // with the status, message and ClientCertificateError detail of the core.
    const { decision, role } = await (decided ?? access(peer, context.method.name));
    if (!quiet || decision.kind !== "admitted") {
      reportDecision(onDecision, decision, procedure, "gate");
    }
    const enforcement = enforcementOf(decision, procedure);
    if (enforcement.kind === "refused") {
      // A recheck refuses a call already under way, whose response has begun.
      if (!quiet) closeHttp1AfterRefusal(context);
      throw refusalError(enforcement);
    }
    context.values.set(clientCertificateKey, enforcement.certificate);
    context.values.set(clientRoleKey, role);
  }

  const requestGate = (context: HandlerContext) => gate(context);
  registerGateCore(requestGate, core);

  return {
    requestGate,
    recheck: (context) => gate(context, true),
    async close() {
      await Promise.all(owned.map((store) => store.close()));
    },
  };
}

function roleStore(
  role: Role,
  members: RoleMembers | undefined,
  owned: CertificateStore[],
): CertificateStore | undefined {
  if (members === undefined) {
    return undefined;
  }
  const stores: CertificateStore[] = [];
  const thumbprints = [...(members.thumbprints ?? [])];
  if (thumbprints.length > 0) {
    let store: CertificateStore;
    try {
      store = createThumbprintStore(thumbprints);
    } catch (error) {
      throw new TypeError(`certificate store service: ${role} ${(error as Error).message}`, { cause: error });
    }
    owned.push(store);
    stores.push(store);
  }
  for (const [i, store] of (members.stores ?? []).entries()) {
    if (
      store === null ||
      typeof store !== "object" ||
      typeof store.lookup !== "function" ||
      typeof store.onChange !== "function"
    ) {
      throw new TypeError(`certificate store service: ${role}.stores[${i}] is not a CertificateStore`);
    }
    stores.push(store);
  }
  return stores.length === 0 ? undefined : createUnionStore(stores);
}
