// certgate/grpc-js: the certgate gate for @grpc/grpc-js servers. Nothing
// reachable from here loads Connect, and the package root does not load
// this: each framework is an optional peer dependency of its own entry.
export {
  createClientCertServerInterceptor,
  type ClientCertServerInterceptorOptions,
} from "./client-cert-server-interceptor.js";
export { clientCertificateOf } from "./client-certificate-of.js";
export { createServerCredentials, type ServerCredentialsOptions } from "./server-credentials.js";
export {
  createClientCertChannelCredentials,
  type ClientCertChannelOptions,
  type ServerCredentialsFilesOptions,
} from "./tls-files-credentials.js";
export {
  createTlsFiles,
  type TlsFiles,
  type TlsFilesOptions,
  type TlsFilesEvent,
  type TlsFilesReload,
  type TlsFileContents,
  type TlsCertificateInfo,
} from "../core/tls-files.js";
export { createThumbprintStore } from "../stores/thumbprint-store.js";
export { ClientCertificateErrorSchema, type ClientCertificateError } from "../gen/certgate/v1/errors_pb.js";
export type { ClientCertOptions } from "../decision/decision.js";
export type { MetricsMeterProvider, MetricsOptions } from "../core/metrics.js";
export type { Decision, DecisionEvent, DecisionVia } from "../core/decision-report.js";
export type { Certificate } from "../core/certificate.js";
export { identityOf, type ClientIdentity, type NameFields } from "../policy/client-identity.js";
export type { CertificateStore, StoreVerdict, StoreEntry, RefusalReason } from "../core/store.js";
export type { PeerCertificate } from "../core/peer-certificate.js";
export type { PeerCertificateContextValuesOptions } from "../proxy/forwarded-peer.js";
