/**
 * certgate/core: the framework-neutral decision, for authors of adapters
 * (grpc-js, Express, Fastify, ...). Nothing here imports a framework.
 *
 * An adapter does three things per call:
 * 1. reads the `PeerCertificate` of the call's connection with
 *    `readPeerCertificate(connectionKey, socketOf)` (or `peerCertificateOf(req)`
 *    for a Node request; `createForwardedPeerReader` behind a proxy);
 * 2. asks `createDecisionCore(options).enforce(peer, procedure, via)`;
 * 3. maps the `Enforcement`: `admitted` hands `certificate` to the handler,
 *    `passed` goes on, `refused` becomes the framework's error with
 *    `status` (`"unauthenticated"` / `"permission_denied"`, numerically
 *    `code`: 16 / 7), `message`, and `detail` (`reason`, `procedure`: the
 *    `certgate.v1.ClientCertificateError` detail).
 *
 * @example
 * import { createDecisionCore, readPeerCertificate } from "certgate/core";
 *
 * const core = createDecisionCore({ store });
 * async function check(session: Http2Session, path: string) {
 *   const peer = readPeerCertificate(session, () => session.socket as TLSSocket);
 *   const result = await core.enforce(peer, path, "interceptor");
 *   if (result.kind === "refused") throw toMyFrameworkError(result.status, result.message, result.detail);
 *   return result.certificate; // undefined when the call passed without one
 * }
 */
export {
  createDecisionCore,
  createDecide,
  procedureName,
  type ClientCertOptions,
  type DecisionCore,
  type Decide,
  type Procedure,
  type ProcedureSource,
} from "./decision/decision.js";
export type {
  MetricsAttributes,
  MetricsMeter,
  MetricsMeterProvider,
  MetricsObservableResult,
  MetricsOptions,
  StoreMetricsOptions,
} from "./core/metrics.js";
export {
  refused,
  refusedAs,
  failure,
  reportDecision,
  type Decision,
  type DecisionEvent,
  type DecisionVia,
} from "./core/decision-report.js";
export {
  enforcementOf,
  refusalOf,
  passThrough,
  type Enforcement,
  type Admission,
  type PassThrough,
  type EnforcedRefusal,
  type ClientCertificateErrorDetail,
} from "./core/enforcement.js";
export {
  refusals,
  refusalMessage,
  publicReason,
  statusCodes,
  type Refusal,
  type RefusalStatus,
  type StatusCode,
  type PublicRefusalReason,
} from "./core/refusal-reasons.js";
export {
  peerCertificateOf,
  readPeerCertificate,
  type PeerCertificate,
  type NodeRequestLike,
  type TlsSocketLike,
} from "./core/peer-certificate.js";
export {
  createForwardedPeerReader,
  type ForwardedPeerReader,
  type ForwardingRequestLike,
  type PeerCertificateContextValuesOptions,
} from "./proxy/forwarded-peer.js";
export { checkLabels, defaultLabelLimits, type LabelLimits, type LabelProblem } from "./core/labels.js";
export { decodePemOrDer, type PemDerInput, type PemDerOptions, type PemDerProblemCode } from "./core/pem-der.js";
export { clockOf, positiveInteger } from "./core/options.js";
export type { Certificate, CertificateInput } from "./core/certificate.js";
export { canonicalSerialNumber, serialNumberOfDer } from "./core/serial-number.js";
export type { CertificateStore, StoreVerdict, StoreEntry, RefusalReason } from "./core/store.js";
export type { SyncLookup } from "./core/sync-lookup.js";
export { withSyncLookup } from "./core/sync-lookup.js";
export type {
  AuditLog,
  AuditRecord,
  AuditEvent,
  AuditQuery,
  AuditActor,
  AuditAction,
  AuditResult,
  AuditedWrite,
} from "./core/audit.js";
