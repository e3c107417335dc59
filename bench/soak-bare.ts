// npx tsx bench/soak-bare.ts [seconds] [new connections/s]
//
// The soak's connection mix without certgate: a bare node:http2 secure
// server (requestCert, answering 200) in a child process, and a client
// opening one mTLS connection per call. Prints both processes' resident
// memory and its slope after warm-up, to tell Node's and OpenSSL's native
// per-connection memory from anything certgate keeps.
import { fork } from "node:child_process";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { createDevCa, issueDevCertificate } from "../src/dev-certificates.js";

if (process.argv[2] === "--child") {
  const { cert, key } = JSON.parse(process.argv[3] as string) as { cert: string; key: string };
  const sessions = new Set<http2.ServerHttp2Session>();
  const server = http2.createSecureServer({ cert, key, requestCert: true, rejectUnauthorized: false }, (_req, res) => {
    res.writeHead(200, { "content-type": "application/proto" });
    res.end();
  });
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  server.on("sessionError", () => {});
  server.listen(0, "127.0.0.1", () => process.send?.({ port: (server.address() as AddressInfo).port }));
  process.on("message", () => {
    const m = process.memoryUsage();
    process.send?.({ rss: m.rss, heapUsed: m.heapUsed, external: m.external, sessions: sessions.size });
  });
  process.on("disconnect", () => process.exit(0));
} else {
  const seconds = Number(process.argv[2] ?? "90");
  const rate = Number(process.argv[3] ?? "50");
  const ca = await createDevCa({ commonName: "bare CA" });
  const server = await issueDevCertificate(ca, {
    commonName: "localhost",
    ipAddresses: ["127.0.0.1"],
    usages: ["server"],
  });
  const client = await issueDevCertificate(ca, { commonName: "client", usages: ["client"] });
  const child = fork(new URL(import.meta.url).pathname, ["--child", JSON.stringify(server)], {
    execArgv: process.execArgv,
  });
  const next = () =>
    new Promise<Record<string, number>>((r) => child.once("message", (m) => r(m as Record<string, number>)));
  const { port } = await next();
  const call = () =>
    new Promise<void>((resolve) => {
      const session = http2.connect(`https://127.0.0.1:${port}`, { ca: ca.cert, cert: client.cert, key: client.key });
      session.on("error", () => resolve());
      const stream = session.request({ ":method": "POST", ":path": "/x" });
      stream.on("data", () => {});
      stream.on("error", () => {});
      stream.on("close", () => {
        session.close();
        resolve();
      });
      stream.end("soak");
    });
  const start = Date.now();
  const samples: { s: number; server: number; client: number; sessions: number }[] = [];
  let calls = 0;
  let nextSample = start;
  while (Date.now() - start < seconds * 1000) {
    const batch: Promise<void>[] = [];
    for (let i = 0; i < rate / 10; i++) batch.push(call());
    await Promise.all([...batch, new Promise((r) => setTimeout(r, 100))]);
    calls += batch.length;
    if (Date.now() >= nextSample) {
      nextSample += 10_000;
      child.send("memory");
      const m = await next();
      samples.push({
        s: (Date.now() - start) / 1000,
        server: (m.rss as number) / 2 ** 20,
        client: process.memoryUsage().rss / 2 ** 20,
        sessions: m.sessions as number,
      });
    }
  }
  const warm = samples.filter((x) => x.s >= seconds * 0.2);
  const slope = (y: (x: (typeof warm)[number]) => number) => {
    const mx = warm.reduce((a, x) => a + x.s, 0) / warm.length;
    const my = warm.reduce((a, x) => a + y(x), 0) / warm.length;
    let n = 0;
    let d = 0;
    for (const x of warm) {
      n += (x.s - mx) * (y(x) - my);
      d += (x.s - mx) ** 2;
    }
    return (n / d) * 60;
  };
  console.log(
    `bare node:http2, ${calls} calls on new mTLS connections in ${seconds} s (${(calls / seconds).toFixed(0)}/s)`,
  );
  console.log(
    `server RSS: ${samples.map((x) => `${x.s.toFixed(0)}s ${x.server.toFixed(0)}`).join(", ")} MB; live sessions at the end ${samples.at(-1)?.sessions}`,
  );
  console.log(`client RSS: ${samples.map((x) => `${x.s.toFixed(0)}s ${x.client.toFixed(0)}`).join(", ")} MB`);
  console.log(
    `slope after warm-up: server ${slope((x) => x.server).toFixed(1)} MB/min, client ${slope((x) => x.client).toFixed(1)} MB/min`,
  );
  child.disconnect();
}
