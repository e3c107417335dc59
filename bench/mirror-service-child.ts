// Child of bench/mirror-scale.ts: the certificate store service over a
// synthetic store (bench/synthetic-store.ts), on 127.0.0.1 port 0.
import { performance } from "node:perf_hooks";
import { createCertificateStoreServer } from "../src/service/certificate-store-server.js";
import { childConfig, serveParent } from "./ipc.js";
import { createSyntheticStore, syntheticId } from "./synthetic-store.js";

/** MirrorServiceConfig is what bench/mirror-scale.ts tells this child. */
export interface MirrorServiceConfig {
  readonly count: number;
  readonly cert: string;
  readonly key: string;
  readonly readerSha256: string;
  readonly watchJournalSize?: number;
  readonly watchPartSize?: number;
}

const config = childConfig<MirrorServiceConfig>();
const store = createSyntheticStore(config.count);
const server = createCertificateStoreServer({
  store,
  cert: config.cert,
  key: config.key,
  access: { reader: { thumbprints: [config.readerSha256] } },
  maxWatches: 4096,
  maxWatchesPerConnection: 16,
  ...(config.watchJournalSize === undefined ? {} : { watchJournalSize: config.watchJournalSize }),
  ...(config.watchPartSize === undefined ? {} : { watchPartSize: config.watchPartSize }),
});
const { url } = await server.listen(0);
const clock = () => performance.timeOrigin + performance.now();

serveParent({
  url: () => url,
  // Deletes certificates from..to-1 one by one (each its own revision) and
  // says when the first deletion was made and the service's CPU meanwhile.
  async delete({ from, to }: { from: number; to: number }) {
    const cpu = process.cpuUsage();
    const at = clock();
    for (let i = from; i < to; i++) await store.delete(syntheticId(i));
    return { at, cpu: process.cpuUsage(cpu) };
  },
  cpu: () => process.cpuUsage(),
  close: async () => {
    await server.close();
  },
});
