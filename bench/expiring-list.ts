// expiring-list: what ListCertificates with expires_before costs (what
// `certgate list --expiring-within 30d` asks) on a store of 10,000
// certificates of which 1% expire within 30 days, against the plain listing
// of the same store. The filter runs in the service over the store's
// listing: the first filtered listing reads every certificate's expiry from
// its DER, later ones find it in the service's cache.
//
// The service runs in this process over real TLS on 127.0.0.1 with a memory
// store; the client is connect-node over gRPC, following every page as the
// CLI does. Each round starts a fresh service (a cold cache), then measures
// the plain listing, the first (cold) and the second (warm) filtered listing.
//
// Run alone: npx tsx bench/expiring-list.ts [--quick]
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { timestampFromMs, type Timestamp } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { CertificateStoreService } from "../src/gen/certgate/v1/certificate_store_pb.js";
import { parseCertificate } from "../src/core/certificate.js";
import { createDevCa, issueDevCertificate } from "../src/dev-certificates.js";
import { createCertificateStoreServer } from "../src/service/certificate-store-server.js";
import { createMemoryStore } from "../src/stores/memory-store.js";
import { variant } from "./directory-store.js";
import type { BenchOptions, SectionResult } from "./section.js";
import { fixed, median, table } from "./stats.js";

const day = 86_400_000;
const count = 10_000;
const expiringShare = 100; // one in 100

/** ExpiringListBenchOptions is what `run` takes: all optional, so that the section also runs alone. */
export type ExpiringListBenchOptions = Partial<BenchOptions> & { quick?: boolean };

export async function run(options: ExpiringListBenchOptions = {}): Promise<SectionResult> {
  const log = options.log ?? ((line: string) => console.error(line));
  const rounds = options.quick === true ? 2 : (options.rounds ?? 5);
  const ca = await createDevCa({ commonName: "expiring-list bench CA" });
  const server = await issueDevCertificate(ca, {
    commonName: "localhost",
    ipAddresses: ["127.0.0.1"],
    usages: ["server"],
  });
  const reader = await issueDevCertificate(ca, { commonName: "reader", usages: ["client"] });
  const now = Date.now();
  const soon = (
    await issueDevCertificate(ca, {
      commonName: "soon",
      notBefore: new Date(now - day),
      notAfter: new Date(now + 10 * day),
    })
  ).der;
  const later = (
    await issueDevCertificate(ca, {
      commonName: "later",
      notBefore: new Date(now - day),
      notAfter: new Date(now + 300 * day),
    })
  ).der;
  const ders = Array.from({ length: count }, (_, i) => variant(i % expiringShare === 0 ? soon : later, i));
  const access = { reader: { thumbprints: [parseCertificate(reader.der).sha256] } };
  const figures = { plainMs: [] as number[], coldMs: [] as number[], warmMs: [] as number[] };
  let matched = 0;
  for (let round = 0; round < rounds; round++) {
    const store = createMemoryStore({ certificates: ders });
    const service = createCertificateStoreServer({
      store,
      cert: server.cert,
      key: server.key,
      access,
      shutdownTimeoutMs: 100,
    });
    const { url } = await service.listen();
    const client = createClient(
      CertificateStoreService,
      createGrpcTransport({ baseUrl: url, nodeOptions: { ca: ca.cert, cert: reader.cert, key: reader.key } }),
    );
    const listAll = async (expiresBefore?: Timestamp) => {
      const start = performance.now();
      let pageToken = "";
      let seen = 0;
      do {
        const page = await client.listCertificates({ pageSize: 1000, pageToken, expiresBefore });
        seen += page.certificates.length;
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
      return { ms: performance.now() - start, seen };
    };
    const bound = timestampFromMs(Date.now() + 30 * day);
    figures.plainMs.push((await listAll()).ms);
    const cold = await listAll(bound);
    figures.coldMs.push(cold.ms);
    figures.warmMs.push((await listAll(bound)).ms);
    matched = cold.seen;
    await service.close();
    await store.close();
    log(`expiring-list: round ${round + 1}/${rounds} done`);
  }
  const warnings =
    matched === count / expiringShare ? [] : [`the filter matched ${matched}, expected ${count / expiringShare}`];
  return {
    title: `ListCertificates over ${count} certificates, ${count / expiringShare} expiring within 30 days (medians of ${rounds} rounds)`,
    lines: table(
      ["listing", "ms", "per certificate examined"],
      [
        [
          "plain (every certificate)",
          fixed(median(figures.plainMs), 0),
          `${fixed((median(figures.plainMs) * 1000) / count, 1)} µs`,
        ],
        [
          "expires_before, cold cache",
          fixed(median(figures.coldMs), 0),
          `${fixed((median(figures.coldMs) * 1000) / count, 1)} µs`,
        ],
        [
          "expires_before, warm cache",
          fixed(median(figures.warmMs), 0),
          `${fixed((median(figures.warmMs) * 1000) / count, 1)} µs`,
        ],
      ],
    ),
    warnings,
    data: { count, matched, ...figures },
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const result = await run({ quick: process.argv.includes("--quick") });
  console.log([result.title, ...result.lines, ...result.warnings.map((w) => `warning: ${w}`)].join("\n"));
}
