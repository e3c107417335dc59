export {
  createClientCertInterceptor,
} from "./interceptors/client-cert-interceptor.js";
export {
  createClientCertGate,
  type ClientCertGate,
} from "./interceptors/client-cert-gate.js";
export {
  peerCertificateContextValues,
  peerCertificateKey,
  clientCertificateKey,
  peerCertificateOf,
  type PeerCertificate,
  type NodeRequestLike,
} from "./peer.js";
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
  refusalMessage,
  type ClientCertOptions,
  type Decision,
  type DecisionEvent,
} from "./decision.js";
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
