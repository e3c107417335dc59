// npx tsx bench/peer-read.ts: what Node's ways of handing out a client
// certificate cost on the first read of a new mTLS connection, interleaved
// per connection (CPU µs in the secureConnection callback, medians). The
// figures behind certgate reading getPeerCertificate(false): see BENCHMARKS.md.
import * as tls from "node:tls";
import type { AddressInfo } from "node:net";
import { createDevCa, issueDevCertificate } from "../src/dev-certificates.js";
import { median } from "./stats.js";

const reads: Record<string, (socket: tls.TLSSocket) => unknown> = {
  "nothing (the callback alone)": () => undefined,
  "getPeerX509Certificate()": (s) => s.getPeerX509Certificate(),
  "getPeerX509Certificate() + fingerprint, fingerprint256": (s) => {
    const x = s.getPeerX509Certificate();
    return [x?.fingerprint, x?.fingerprint256];
  },
  "getPeerCertificate(false) + fingerprints, raw": (s) => {
    const c = s.getPeerCertificate(false);
    return [c.fingerprint, c.fingerprint256, c.raw];
  },
};
const names = Object.keys(reads);
const times: number[][] = names.map(() => []);
const ca = await createDevCa({ commonName: "peer-read bench CA" });
const server = await issueDevCertificate(ca, { commonName: "localhost", dnsNames: ["localhost"], usages: ["server"] });
const client = await issueDevCertificate(ca, { commonName: "alice", usages: ["client"] });
let n = 0;
const tlsServer = tls.createServer(
  { key: server.key, cert: server.cert, ca: ca.cert, requestCert: true, rejectUnauthorized: false },
  (socket) => {
    const i = n++ % names.length;
    const t0 = process.cpuUsage();
    reads[names[i]!]!(socket);
    const used = process.cpuUsage(t0);
    times[i]!.push(used.user + used.system);
    socket.end();
  },
);
await new Promise<void>((resolve) => tlsServer.listen(0, "127.0.0.1", resolve));
const port = (tlsServer.address() as AddressInfo).port;
const total = Number(process.argv[2] ?? 800);
for (let i = 0; i < total; i++) {
  await new Promise<void>((resolve, reject) => {
    const socket = tls.connect({
      port,
      host: "127.0.0.1",
      key: client.key,
      cert: client.cert,
      ca: ca.cert,
      rejectUnauthorized: false,
    });
    socket.on("data", () => {});
    socket.on("error", reject);
    socket.on("close", () => resolve());
  });
}
await new Promise<void>((resolve) => tlsServer.close(() => resolve()));
console.log(`first read on ${total} new mTLS connections, interleaved (CPU µs, median):`);
names.forEach((name, i) => {
  console.log(`  ${name.padEnd(58)} ${median(times[i]!).toFixed(1)}`);
});
