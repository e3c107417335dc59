import { createLookupStore } from "./remote/lookup.js";
import { transportsOf } from "./remote/options.js";
import { createMirrorStore } from "./remote/mirror.js";
import type { RemoteStore, RemoteStoreOptions } from "./remote/types.js";
import { createClientCertTransport, type ClientCertTransport } from "../client/client-cert-transport.js";

// The options and the store's types live in remote/types.ts, which the two
// modes import too: no module imports this one back.
export type {
  RemoteStore,
  RemoteStoreEvent,
  RemoteStoreMode,
  RemoteStoreOptions,
  RemoteStoreState,
  RemoteStoreClientCert,
  RemoteCertificate,
  RemoteCertificateResult,
} from "./remote/types.js";

/**
 * createRemoteStore returns a `CertificateStore` backed by the certificate
 * store service, through a Connect transport that you create (so TLS client
 * options stay yours).
 *
 * In `mirror` mode (the default) it keeps a local copy of the thumbprints,
 * fed by WatchCertificates: lookups never wait on the network, every change
 * bumps `revision` so that the next call of an open connection sees a
 * deletion, and a broken watch is resumed with backoff and jitter from the
 * last revision. In `lookup` mode it asks VerifyCertificate, one request per
 * certificate at a time, and caches answers for `cacheTtlMs` /
 * `negativeCacheTtlMs`.
 *
 * It fails closed: lookups answer with an `error` verdict (a refusal) while
 * the service cannot be reached, unless `maxStaleMs` allows a bounded grace.
 * It never admits a certificate whose deletion it has heard of.
 *
 * @example
 * const store = createRemoteStore({
 *   transport: createGrpcTransport({
 *     baseUrl: "https://certgate.internal:8444",
 *     nodeOptions: { cert: readerCert, key: readerKey, ca: storeCa },
 *   }),
 * });
 * await store.ready();
 * createClientCertInterceptor({ store });
 *
 * @example
 * // The reader certificate from a mounted Secret, renewed without a restart.
 * const store = createRemoteStore({
 *   clientCert: { baseUrl: "https://certgate.internal:8444", cert: "/tls/tls.crt", key: "/tls/tls.key", ca: "/tls/ca.crt" },
 * });
 */
export function createRemoteStore(options: RemoteStoreOptions): RemoteStore {
  if (options?.clientCert !== undefined) {
    return withClientCertTransports(options);
  }
  transportsOf(options);
  const mode = options.mode ?? "mirror";
  switch (mode) {
    case "mirror":
      return createMirrorStore(options);
    case "lookup":
      return createLookupStore(options);
    default:
      throw new TypeError(`createRemoteStore(): mode must be "mirror" or "lookup", got ${JSON.stringify(mode)}`);
  }
}

// The `clientCert` form: transports that follow the client certificate's
// files, closed with the store.
function withClientCertTransports(options: RemoteStoreOptions): RemoteStore {
  const { clientCert, ...rest } = options;
  if (rest.transport !== undefined || rest.transports !== undefined) {
    throw new TypeError("createRemoteStore(): give options.clientCert or options.transport(s), not both");
  }
  const { baseUrl, baseUrls, ...transportOptions } = clientCert!;
  const urls = baseUrls ?? (baseUrl === undefined ? [] : [baseUrl]);
  if (urls.length === 0) {
    throw new TypeError("createRemoteStore(): options.clientCert needs baseUrl (or baseUrls)");
  }
  const transports: ClientCertTransport[] = [];
  try {
    // One TlsFiles for every replica: the files are read and watched once.
    const first = createClientCertTransport({ protocol: "grpc", ...transportOptions, baseUrl: urls[0]! });
    transports.push(first);
    for (const url of urls.slice(1)) {
      transports.push(
        createClientCertTransport({
          protocol: "grpc",
          ...transportOptions,
          cert: undefined,
          key: undefined,
          ca: undefined,
          files: first.files,
          baseUrl: url,
        }),
      );
    }
  } catch (error) {
    for (const t of transports) t.close();
    throw error;
  }
  let store: RemoteStore;
  try {
    store = createRemoteStore({ ...rest, transports });
  } catch (error) {
    for (const t of transports) t.close();
    throw error;
  }
  const close = store.close.bind(store);
  store.close = async () => {
    await close();
    // The first transport owns the files (when it made them), so it closes last.
    for (const t of transports.slice(1)) t.close();
    transports[0]!.close();
  };
  return store;
}
