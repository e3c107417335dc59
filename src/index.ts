export { createClientCertInterceptor } from "./connect/client-cert-interceptor.js";
export {
  createClientCertGate,
  type ClientCertGate,
} from "./connect/client-cert-gate.js";
export { createFastRefusalHandler, type FastRefusalOptions } from "./connect/fast-refusal.js";
export {
  guardRequestHandler,
  isMalformedRequest,
  type GuardRequestHandlerOptions,
  type GuardedRequestError,
} from "./connect/guard-request-handler.js";
export {
  peerCertificateContextValues,
  peerCertificateKey,
  clientCertificateKey,
} from "./connect/context-values.js";
export { peerCertificateOf, type PeerCertificate, type NodeRequestLike } from "./core/peer-certificate.js";
export {
  createRemoteStore,
  type RemoteStore,
  type RemoteStoreOptions,
  type RemoteStoreMode,
  type RemoteStoreState,
  type RemoteStoreEvent,
  type RemoteStoreClientCert,
  type RemoteCertificate,
  type RemoteCertificateResult,
} from "./stores/remote-store.js";
export { createMemoryStore, type MemoryStoreOptions } from "./stores/memory-store.js";
// PostgreSQL store: `pg` is imported only when createPostgresStore is called.
export {
  createPostgresStore,
  type PostgresStore,
  type PostgresStoreOptions,
  type PostgresPool,
  type PutManyEntry,
} from "./stores/postgres/postgres-store.js";
export {
  createCertificateStoreServer,
  type CertificateStoreServer,
  type CertificateStoreServerOptions,
} from "./service/certificate-store-server.js";
export {
  createCertificateStoreService,
  type CertificateStoreServiceHandler,
} from "./service/certificate-store-service.js";
export type { CertificateStoreServiceOptions } from "./service/certificate-store-service-options.js";
export { clientRoleKey, type AccessOptions, type RoleMembers, type Role } from "./service/access.js";
export {
  createHealthService,
  type HealthServiceHandler,
  type HealthServiceOptions,
  type HealthStatus,
} from "./service/health.js";
export {
  createReflectionService,
  type ReflectionServiceHandler,
  type ReflectionServiceOptions,
} from "./service/reflection.js";
export { createAuthzServer, healthPath, type AuthzServer, type AuthzServerOptions } from "./authz/authz-server.js";
export type { AuthzRequestEvent } from "./authz/forward-auth.js";
export type { AuthzAnswer } from "./authz/authz-decision.js";
export { identityHeaderNames, refusalReasonHeader } from "./authz/identity-headers.js";
export {
  createPeerCertificateContextValues,
  type PeerCertificateContextValues,
} from "./connect/proxy-context-values.js";
export type { PeerCertificateContextValuesOptions, ForwardingRequestLike } from "./proxy/forwarded-peer.js";
export type { TrustedProxies } from "./proxy/trusted-proxies.js";
export { forwardingFormats, type ForwardingFormat } from "./proxy/forwarding-formats.js";
export { createThumbprintStore } from "./stores/thumbprint-store.js";
export {
  createDirectoryStore,
  type DirectoryStore,
  type DirectoryStoreOptions,
  type DirectoryStoreProblem,
  type DirectoryProblemCode,
} from "./stores/directory-store.js";
export {
  verifyAuditTrail,
  type AuditTrailReport,
  type AuditTrailProblem,
} from "./stores/directory/audit-verify.js";
export {
  createChangeNotifier,
  type CertificateStore,
  type StoreVerdict,
  type StoreEntry,
  type RefusalReason,
  type ChangeNotifier,
  type WritableCertificateStore,
  type StoredCertificate,
  type StoreChange,
  type SharedChangeLog,
  type LoggedChange,
  type ReplicaState,
  isValidCertificateId,
} from "./core/store.js";
export { withSyncLookup, type SyncLookup } from "./core/sync-lookup.js";
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
export { createMemoryAuditLog, type MemoryAuditLogOptions } from "./stores/memory-audit-log.js";
export { clientIdentity } from "./connect/client-identity.js";
export { identityOf, type ClientIdentity, type NameFields } from "./policy/client-identity.js";
export type {
  PolicyOptions,
  TrustOptions,
  RevocationOptions,
  ProcedureRule,
  RuleOptions,
} from "./policy/policy-options.js";
export type { CertificateIdentity, IssuerCertificateSource } from "./policy/identity-match.js";
export { OnlineRevocationError, type OcspMode } from "./policy/online-revocation.js";
export type { RevocationFetch } from "./policy/online-fetch.js";
export {
  createCertificateFileSet,
  createCertificateSetFromStore,
  createCertificateSet,
  type CertificateSet,
  type CertificateSetInput,
  type CertificateListSource,
} from "./policy/certificate-set.js";
export { createCrlFileSet, createCrlSet, type CrlSet, type CrlSetInput } from "./policy/crl-set.js";
export type { FileSourceOptions } from "./policy/file-source.js";
export {
  ClientCertificateErrorSchema,
  type ClientCertificateError,
} from "./gen/certgate/v1/errors_pb.js";
export { distinguishedNamesEqual, type DistinguishedName, type NameAttribute } from "./policy/distinguished-name.js";
export { parseDistinguishedName, formatDistinguishedName } from "./policy/distinguished-name-text.js";
export { parseSpiffeId, type SpiffeId } from "./policy/spiffe.js";
export type { ClientCertOptions } from "./decision/decision.js";
export type { MetricsMeterProvider, MetricsOptions, StoreMetricsOptions } from "./core/metrics.js";
export type { Decision, DecisionEvent, DecisionVia } from "./core/decision-report.js";
export { refusalMessage } from "./core/refusal-reasons.js";
export { canonicalSerialNumber } from "./core/serial-number.js";
export { parseCertificate, type Certificate, type CertificateInput, type SubjectAltNames } from "./core/certificate.js";
export {
  normalizeThumbprint,
  thumbprintsEqual,
  thumbprintsOfDer,
  type ThumbprintAlgorithm,
} from "./core/thumbprint.js";
export { readPemBlocks, type PemBlock } from "./core/pem-blocks.js";
export {
  createTlsFiles,
  type TlsFiles,
  type TlsFilesOptions,
  type TlsFilesEvent,
  type TlsFilesReload,
  type TlsFileContents,
  type TlsCertificateInfo,
} from "./core/tls-files.js";
export { watchServerTls, type SecureContextServer } from "./core/server-tls.js";
export {
  createClientCertTransport,
  type ClientCertTransport,
  type ClientCertTransportOptions,
} from "./client/client-cert-transport.js";
