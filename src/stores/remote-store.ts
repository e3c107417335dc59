import { createLookupStore } from "./remote/lookup.js";
import { transportsOf } from "./remote/options.js";
import { createMirrorStore } from "./remote/mirror.js";
import type { RemoteStore, RemoteStoreOptions } from "./remote/types.js";

// The options and the store's types live in remote/types.ts, which the two
// modes import too: no module imports this one back.
export type {
  RemoteStore,
  RemoteStoreEvent,
  RemoteStoreMode,
  RemoteStoreOptions,
  RemoteStoreState,
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
 */
export function createRemoteStore(options: RemoteStoreOptions): RemoteStore {
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
