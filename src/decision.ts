import { Code, ConnectError } from "@connectrpc/connect";
import type { Certificate } from "./certificate.js";
import { warnOnce, type PeerCertificate } from "./peer.js";
import type { CertificateStore, RefusalReason, StoreEntry, StoreVerdict } from "./store.js";

/**
 * ClientCertOptions configures `createClientCertInterceptor` and
 * `createClientCertGate`; both make the same decision from them.
 */
export interface ClientCertOptions {
  /** Where admitted certificates come from. Required. */
  store: CertificateStore;
  /**
   * Refuse certificates whose validity window has ended (notAfter), on every
   * call, also on connections opened before the end. By default, true.
   */
  validateNotAfter?: boolean;
  /**
   * Refuse certificates whose validity window has not begun (notBefore).
   * By default, true.
   */
  validateNotBefore?: boolean;
  /**
   * The current time, as epoch milliseconds or a Date, for tests.
   * By default, `Date.now`.
   */
  clock?: () => number | Date;
  /**
   * How long to wait for the store before refusing with
   * `store_unavailable`, in milliseconds. By default, 5000.
   */
  lookupTimeoutMs?: number;
  /**
   * Called once per call with the decision, for logs and metrics. By default,
   * nothing is called. Errors it throws are ignored.
   */
  onDecision?: (event: DecisionEvent) => void;
}

/**
 * Decision is the result of checking one call's client certificate.
 */
export type Decision =
  | {
      readonly kind: "admitted";
      readonly certificate: Certificate;
      /** The store entry that admitted the certificate. */
      readonly entry: StoreEntry;
      /**
       * The peer, when its certificate came through a proxy or it sent
       * forwarding headers that were ignored; undefined otherwise.
       */
      readonly peer?: PeerCertificate;
    }
  | {
      readonly kind: "refused";
      readonly reason: RefusalReason;
      /** A short lowercase message for the client; never lists allowed certificates. */
      readonly message: string;
      readonly certificate: Certificate | undefined;
      /**
       * The peer, when its certificate came through a proxy or it sent
       * forwarding headers that were ignored; undefined otherwise.
       */
      readonly peer?: PeerCertificate;
    }
  | {
      readonly kind: "error";
      readonly reason: "store_unavailable";
      readonly message: string;
      readonly certificate: Certificate;
      /** What went wrong, for logs; never shown to the client. */
      readonly error: unknown;
      /**
       * The peer, when its certificate came through a proxy or it sent
       * forwarding headers that were ignored; undefined otherwise.
       */
      readonly peer?: PeerCertificate;
    };

/**
 * DecisionEvent is what `onDecision` receives for every call.
 */
export interface DecisionEvent {
  /** Whether the call went through. A store error is a refusal. */
  readonly kind: "admitted" | "refused";
  /** The machine-readable reason of a refusal; undefined when admitted. */
  readonly reason: RefusalReason | undefined;
  /** The procedure called, such as `/certgate.example.v1.EchoService/Echo`. */
  readonly procedure: string;
  /** The SHA-256 thumbprint of the client certificate, if one was presented. */
  readonly thumbprint: string | undefined;
  readonly certificate: Certificate | undefined;
  /** The store entry that admitted the call. */
  readonly entry: StoreEntry | undefined;
  /** The underlying failure of a store error. */
  readonly error: unknown;
  /** Which adapter decided. */
  readonly via: "interceptor" | "gate";
  /**
   * Where the certificate came from: `"proxy"` when a trusted proxy forwarded
   * it in a header (see `createPeerCertificateContextValues`), else `"tls"`.
   */
  readonly source?: "tls" | "proxy";
  /**
   * Certificate-forwarding headers that were ignored because the request did
   * not come from a trusted proxy; undefined when there were none. A client
   * sending them is probing or misconfigured.
   */
  readonly ignoredForwardingHeaders?: readonly string[];
}

/**
 * Decide checks the certificate of one call. It answers synchronously when
 * the connection's cached verdict is still good, so a warm call costs no
 * allocation and no promise.
 */
export type Decide = (peer: PeerCertificate | undefined) => Decision | Promise<Decision>;

interface CacheEntry {
  readonly revision: number;
  expiresAt: number;
  result: Decision | Promise<Decision>;
}

// A Map, not an object literal: a store's reason such as "constructor" must
// not find Object.prototype's members.
const messages: ReadonlyMap<string, string> = new Map(Object.entries({
  no_certificate: "no client certificate presented",
  invalid_certificate: "client certificate could not be read",
  expired: "client certificate expired",
  not_yet_valid: "client certificate not yet valid",
  not_allowed: "client certificate not allowed",
  store_unavailable: "client certificate could not be checked: store unavailable",
}));

/**
 * refusalMessage returns the client-facing message for a reason.
 */
export function refusalMessage(reason: RefusalReason): string {
  return messages.get(reason) ?? "client certificate refused";
}

function refused(reason: RefusalReason, certificate: Certificate | undefined): Decision {
  return { kind: "refused", reason, message: refusalMessage(reason), certificate };
}

/**
 * createDecide builds the decision core shared by the interceptor and the
 * gate: validity window on every call, then the store's verdict, cached per
 * connection until the store's revision changes.
 */
export function createDecide(options: ClientCertOptions): Decide {
  validateOptions(options);
  const { store } = options;
  const validateNotAfter = options.validateNotAfter ?? true;
  const validateNotBefore = options.validateNotBefore ?? true;
  const clock = options.clock;
  const now =
    clock === undefined
      ? Date.now
      : () => {
          const t = +clock();
          if (Number.isNaN(t)) {
            throw new Error("certgate: options.clock returned an invalid time");
          }
          return t;
        };
  const lookupTimeoutMs = options.lookupTimeoutMs ?? 5000;
  const cache = new WeakMap<PeerCertificate, CacheEntry>();
  const noCertificate = refused("no_certificate", undefined);
  const unreadable = refused("invalid_certificate", undefined);

  function lookup(peer: PeerCertificate, certificate: Certificate, revision: number): Promise<Decision> {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<StoreVerdict>((resolve) => {
      timer = setTimeout(() => {
        const error = new Error(`certificate store did not answer within ${lookupTimeoutMs} ms`);
        controller.abort(error);
        resolve({ kind: "error", error });
      }, lookupTimeoutMs);
      timer.unref();
    });
    let verdict: Promise<StoreVerdict>;
    try {
      verdict = Promise.resolve(store.lookup(certificate, controller.signal));
    } catch (error) {
      verdict = Promise.resolve({ kind: "error", error });
    }
    const entry: CacheEntry = { revision, expiresAt: Infinity, result: undefined as never };
    entry.result = Promise.race([verdict, timeout]).then(
      (v) => settle(v),
      (error: unknown) => settle({ kind: "error", error }),
    );
    // Never rejects: whatever the store does, the outcome is a decision.
    function settle(v: unknown): Decision {
      clearTimeout(timer);
      const decision = toDecision(v, certificate);
      if (cache.get(peer) === entry) {
        if (decision.kind === "error") {
          // Never cache a failure: the next call asks again (and is refused
          // meanwhile, since a failure is a refusal).
          cache.delete(peer);
        } else {
          entry.result = decision;
          entry.expiresAt = expiryOf(v);
        }
      }
      return decision;
    }
    cache.set(peer, entry);
    return entry.result;
  }

  const decide: Decide = function decide(peer) {
    if (peer === undefined) {
      warnOnce(
        "context",
        "certgate: no peer certificate in the call's context; pass peerCertificateContextValues as the adapter's contextValues, or every call is refused",
      );
      return noCertificate;
    }
    const certificate = peer.certificate;
    if (certificate === undefined) {
      return peer.error === undefined ? noCertificate : unreadable;
    }
    let t: number;
    let revision: number;
    try {
      t = now();
      revision = store.revision;
    } catch (error) {
      // A broken clock or store fails closed, like a failed look-up.
      return failure(certificate, error);
    }
    // Negated comparisons, so that an unreadable date (NaN) refuses.
    if (validateNotAfter && !(t <= certificate.notAfter.getTime())) {
      return refused("expired", certificate);
    }
    if (validateNotBefore && !(t >= certificate.notBefore.getTime())) {
      return refused("not_yet_valid", certificate);
    }
    const entry = cache.get(peer);
    if (entry !== undefined && entry.revision === revision && t < entry.expiresAt) {
      return entry.result;
    }
    return lookup(peer, certificate, revision);
  };
  return withForwarding(decide);
}

// Decisions about proxied peers (and peers whose forwarding headers were
// ignored) carry the peer, so that onDecision can say how the certificate
// arrived. Direct peers keep the shared, allocation-free decisions.
function withForwarding(decide: Decide): Decide {
  return (peer) => {
    const result = decide(peer);
    if (peer === undefined || (peer.source !== "proxy" && peer.ignoredForwardingHeaders === undefined)) {
      return result;
    }
    return result instanceof Promise ? result.then((d) => ({ ...d, peer })) : { ...result, peer };
  };
}

// Configuration mistakes fail at start-up, naming the option, rather than
// turning into a refusal (or an admission) of every call later.
function validateOptions(options: ClientCertOptions | undefined): void {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("certgate: options.store is required (a CertificateStore); no options were given");
  }
  const { store, clock, lookupTimeoutMs, onDecision } = options;
  if (typeof store !== "object" || store === null || typeof store.lookup !== "function") {
    throw new TypeError("certgate: options.store is required (a CertificateStore)");
  }
  if (clock !== undefined && typeof clock !== "function") {
    throw new TypeError("certgate: options.clock must be a function returning epoch milliseconds or a Date");
  }
  if (
    lookupTimeoutMs !== undefined &&
    (typeof lookupTimeoutMs !== "number" || !(lookupTimeoutMs > 0) || lookupTimeoutMs > 2 ** 31 - 1)
  ) {
    throw new TypeError(
      `certgate: options.lookupTimeoutMs must be a number of milliseconds between 1 and 2147483647, got ${String(lookupTimeoutMs)}`,
    );
  }
  if (onDecision !== undefined && typeof onDecision !== "function") {
    throw new TypeError("certgate: options.onDecision must be a function");
  }
  for (const name of ["validateNotAfter", "validateNotBefore"] as const) {
    if (options[name] !== undefined && typeof options[name] !== "boolean") {
      throw new TypeError(`certgate: options.${name} must be a boolean`);
    }
  }
}

function toDecision(verdict: unknown, certificate: Certificate): Decision {
  const v = verdict as StoreVerdict | null | undefined;
  switch (v?.kind) {
    case "admitted":
      return { kind: "admitted", certificate, entry: v.entry };
    case "refused":
      return refused(v.reason, certificate);
    case "error":
      return failure(certificate, v.error);
    default:
      // Anything else is a broken store: fail closed.
      return failure(
        certificate,
        new Error(`certificate store answered with an invalid verdict: ${describe(verdict)}`),
      );
  }
}

function failure(certificate: Certificate, error: unknown): Decision {
  return {
    kind: "error",
    reason: "store_unavailable",
    message: refusalMessage("store_unavailable"),
    certificate,
    error,
  };
}

function expiryOf(verdict: unknown): number {
  const expiresAt = (verdict as { expiresAt?: unknown }).expiresAt;
  return typeof expiresAt === "number" ? expiresAt : Infinity;
}

function describe(value: unknown): string {
  if (typeof value !== "object" || value === null) {
    return String(value);
  }
  const kind = (value as { kind?: unknown }).kind;
  return `an object of kind ${typeof kind === "string" ? JSON.stringify(kind.slice(0, 40)) : String(kind)}`;
}

/**
 * decisionError turns a refusal into the `ConnectError` the client sees:
 * always `Code.Unauthenticated` (HTTP 401, grpc-status 16).
 */
export function decisionError(decision: Exclude<Decision, { kind: "admitted" }>): ConnectError {
  return new ConnectError(
    decision.message,
    Code.Unauthenticated,
    undefined,
    undefined,
    decision.kind === "error" ? decision.error : undefined,
  );
}

/**
 * reportDecision calls `onDecision`, if set, with the event of one call.
 */
export function reportDecision(
  onDecision: ((event: DecisionEvent) => void) | undefined,
  decision: Decision,
  procedure: string,
  via: "interceptor" | "gate",
): void {
  if (onDecision === undefined) {
    return;
  }
  const certificate = decision.certificate;
  try {
    onDecision({
      kind: decision.kind === "admitted" ? "admitted" : "refused",
      reason: decision.kind === "admitted" ? undefined : decision.reason,
      procedure,
      thumbprint: certificate?.sha256,
      certificate,
      entry: decision.kind === "admitted" ? decision.entry : undefined,
      error: decision.kind === "error" ? decision.error : undefined,
      via,
      source: decision.peer?.source ?? "tls",
      ignoredForwardingHeaders: decision.peer?.ignoredForwardingHeaders,
    });
  } catch {
    // A failing hook must not change the decision.
  }
}
