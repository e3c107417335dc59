export {
  createClientCertInterceptor,
} from "./interceptors/client-cert-interceptor.js";
export {
  createClientCertGate,
  type ClientCertGate,
} from "./interceptors/client-cert-gate.js";
export {
  guardRequestHandler,
  type GuardRequestHandlerOptions,
  type GuardedRequestError,
} from "./guard-request-handler.js";
export {
  peerCertificateContextValues,
  peerCertificateKey,
  clientCertificateKey,
  peerCertificateOf,
  type PeerCertificate,
  type NodeRequestLike,
} from "./peer.js";
export {
  createRemoteStore,
  type RemoteStore,
  type RemoteStoreOptions,
  type RemoteStoreMode,
  type RemoteStoreState,
  type RemoteStoreEvent,
} from "./stores/remote-store.js";
export { createMemoryStore, type MemoryStoreOptions } from "./stores/memory-store.js";
export {
  createCertificateStoreServer,
  type CertificateStoreServer,
  type CertificateStoreServerOptions,
} from "./service/certificate-store-server.js";
export {
  createCertificateStoreService,
  type CertificateStoreServiceHandler,
  type CertificateStoreServiceOptions,
} from "./service/certificate-store-service.js";
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
export {
  createPeerCertificateContextValues,
  type PeerCertificateContextValuesOptions,
  type PeerCertificateContextValues,
  type ForwardingRequestLike,
} from "./peer-from-proxy.js";
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
  createChangeNotifier,
  type CertificateStore,
  type StoreVerdict,
  type StoreEntry,
  type RefusalReason,
  type ChangeNotifier,
  type WritableCertificateStore,
  type StoredCertificate,
  type StoreChange,
  isValidCertificateId,
} from "./store.js";
export {
  clientIdentity,
  identityOf,
  type ClientIdentity,
  type NameFields,
} from "./policy/client-identity.js";
export type {
  PolicyOptions,
  TrustOptions,
  RevocationOptions,
  ProcedureRule,
  RuleOptions,
} from "./policy/policy-options.js";
export type { CertificateIdentity, IssuerCertificateSource } from "./policy/identity-match.js";
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
export {
  parseDistinguishedName,
  distinguishedNamesEqual,
  formatDistinguishedName,
  type DistinguishedName,
  type NameAttribute,
} from "./policy/distinguished-name.js";
export { parseSpiffeId, type SpiffeId } from "./policy/spiffe.js";
export {
  createDecisionCore,
  type DecisionCore,
  type DecisionCall,
  refusalMessage,
  type ClientCertOptions,
  type Decision,
  type DecisionEvent,
} from "./decision.js";
export { canonicalSerialNumber } from "./serial-number.js";
export {
  normalizeThumbprint,
  parseCertificate,
  thumbprintsEqual,
  thumbprintsOfDer,
  readPemBlocks,
  type Certificate,
  type CertificateInput,
  type SubjectAltNames,
  type ThumbprintAlgorithm,
  type PemBlock,
} from "./certificate.js";
