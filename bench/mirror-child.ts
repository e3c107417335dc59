// Child of bench/mirror-scale.ts: one or many mirrors (createRemoteStore,
// mirror mode, each on its own HTTP/2 connection as on its own API server)
// of the service in bench/mirror-service-child.ts. Started with --expose-gc
// so that its resident memory is read after collecting garbage.
import { performance } from "node:perf_hooks";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { Certificate } from "../src/core/certificate.js";
import { syncLookupOf, type SyncLookup } from "../src/core/sync-lookup.js";
import { createRemoteStore, type RemoteStore } from "../src/stores/remote-store.js";
import { childConfig, serveParent } from "./ipc.js";
import { syntheticSha256 } from "./synthetic-store.js";

/** MirrorChildConfig is what bench/mirror-scale.ts tells this child. */
export interface MirrorChildConfig {
  readonly url: string;
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/** MemoryReading is the child's memory after collecting garbage. */
export interface MemoryReading {
  readonly rss: number;
  readonly heap: number;
  readonly external: number;
}

const config = childConfig<MirrorChildConfig>();
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const clock = () => performance.timeOrigin + performance.now();
const certificateOf = (i: number) => ({ sha256: syntheticSha256(i) }) as Certificate;

interface Mirror {
  readonly store: RemoteStore;
  readonly lookup: SyncLookup;
  snapshots: number;
}
const mirrors: Mirror[] = [];
// The deletion being followed: when each mirror first refused its certificate.
let collected: Promise<(number | undefined)[]> = Promise.resolve([]);
let probe: { certificate: Certificate; times: (number | undefined)[]; left: number; done: () => void } | undefined;

function read(): MemoryReading {
  for (let i = 0; i < 3; i++) gc();
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed, external: m.external };
}

function check(m: number): void {
  const p = probe;
  if (p === undefined || p.times[m] !== undefined) return;
  if (mirrors[m]!.lookup(p.certificate)?.kind !== "refused") return;
  p.times[m] = clock();
  if (--p.left === 0) p.done();
}

// Grow the young generation to its working size first, so that the reading
// before the mirrors start is not taken in a smaller heap.
const ring: unknown[] = new Array(4096);
for (let i = 0; i < 5_000_000; i++) ring[i & 4095] = { i, s: `x${i & 1023}` };

serveParent({
  read,
  cpu: () => process.cpuUsage(),
  // Starts `count` mirrors; each is ready at its first admitted look-up of `admitted`.
  async start({ count, admitted }: { count: number; admitted: number }) {
    const certificate = certificateOf(admitted);
    const t0 = performance.now();
    const started = Array.from({ length: count }, async () => {
      const m = mirrors.length;
      const transport = createGrpcTransport({
        baseUrl: config.url,
        nodeOptions: { ca: config.ca, cert: config.cert, key: config.key },
      });
      const mirror: Mirror = {
        store: createRemoteStore({
          transport,
          syncTimeoutMs: 120_000,
          idleTimeoutMs: 30_000,
          onEvent: (event) => {
            if (event.kind === "synced" && event.via === "snapshot") mirror.snapshots++;
          },
        }),
        lookup: () => undefined,
        snapshots: 0,
      };
      (mirror as { lookup: SyncLookup }).lookup = syncLookupOf(mirror.store)!;
      mirrors.push(mirror);
      mirror.store.onChange(() => check(m));
      const verdict = await mirror.store.lookup(certificate, new AbortController().signal);
      if (verdict.kind !== "admitted") throw new Error(`mirror ${m}: first look-up ${verdict.kind}`);
      return performance.now() - t0;
    });
    return Promise.all(started);
  },
  // Nanoseconds per warm sync look-up on the first mirror: hits on 1024 spread
  // certificates of `size`, and misses.
  lookupNs({ size }: { size: number }) {
    const lookup = mirrors[0]!.lookup;
    const hits = Array.from({ length: 1024 }, (_, i) => certificateOf(Math.floor((i * size) / 1024)));
    const misses = Array.from({ length: 1024 }, (_, i) => certificateOf(size + 10_000_000 + i));
    const time = (list: Certificate[], kind: string) => {
      const rounds = 1_000_000;
      let best = Number.POSITIVE_INFINITY;
      for (let r = 0; r < 5; r++) {
        const t = performance.now();
        for (let i = 0; i < rounds; i++) {
          if (lookup(list[i & 1023]!)?.kind !== kind) throw new Error(`look-up: not ${kind}`);
        }
        best = Math.min(best, ((performance.now() - t) * 1e6) / rounds);
      }
      return best;
    };
    return { hitNs: time(hits, "admitted"), missNs: time(misses, "refused") };
  },
  // Starts following the deletion of certificate `index`; `collect` tells
  // when each mirror first refused it.
  follow({ index, timeoutMs }: { index: number; timeoutMs: number }) {
    const times: (number | undefined)[] = new Array(mirrors.length).fill(undefined);
    collected = new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        probe = undefined;
        resolve(times);
      };
      const timer = setTimeout(finish, timeoutMs);
      probe = { certificate: certificateOf(index), times, left: mirrors.length, done: finish };
    });
    for (let m = 0; m < mirrors.length; m++) check(m);
    return true;
  },
  collect: () => collected,
  // How many (mirror, certificate) pairs of from..to-1 are still admitted, and snapshots taken.
  verify({ from, to }: { from: number; to: number }) {
    let admitted = 0;
    const certificates = Array.from({ length: to - from }, (_, i) => certificateOf(from + i));
    for (const mirror of mirrors) {
      for (const certificate of certificates) if (mirror.lookup(certificate)?.kind !== "refused") admitted++;
    }
    return { admitted, snapshots: mirrors.reduce((n, m) => n + m.snapshots, 0) };
  },
  async close() {
    await Promise.all(mirrors.map((m) => m.store.close()));
  },
});
