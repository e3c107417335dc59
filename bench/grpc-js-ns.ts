// grpc-js-ns: the in-process cost of certgate/grpc-js's per-call work on a
// warm connection, and of the alternatives for reaching the client
// certificate from a grpc-js interceptor, each in a tight loop over a call
// held open on a real TLS connection (so that its HTTP/2 session is live).
import * as grpc from "@grpc/grpc-js";
import { streamOf } from "../src/grpc-js/call-stream.js";
import { createClientCertServerInterceptor } from "../src/grpc-js/client-cert-server-interceptor.js";
import { createServerCredentials } from "../src/grpc-js/server-credentials.js";
import { peerCertificateOf } from "../src/core/peer-certificate.js";
import { createThumbprintStore } from "../src/stores/thumbprint-store.js";
import type { IssuedCertificate } from "../src/dev-certificates.js";
import { createNsTimer } from "./ns-timer.js";
import type { BenchOptions, SectionResult } from "./section.js";
import { fixed, table } from "./stats.js";

const path = "/certgate.bench.Hold/Hold";
const method = {
  path,
  requestStream: false,
  responseStream: false,
  requestSerialize: (v: Buffer) => v,
  requestDeserialize: (b: Buffer) => b,
  responseSerialize: (v: Buffer) => v,
  responseDeserialize: (b: Buffer) => b,
};

interface Held {
  readonly call: grpc.ServerInterceptingCallInterface;
  release(): void;
}

/** run measures each operation's ns per call, less an empty loop's. */
export async function run(options: BenchOptions): Promise<SectionResult> {
  const { issued } = options.pki;
  const { time, batches, batchMs } = createNsTimer(options, "grpc-js-ns");
  const arrived: ((call: grpc.ServerInterceptingCallInterface) => void)[] = [];
  const pending: grpc.sendUnaryData<Buffer>[] = [];
  // Captures the innermost call of each request, as certgate's interceptor
  // receives it when it comes first.
  const capture: grpc.ServerInterceptor = (_m, call) => {
    arrived.shift()?.(call);
    return call as grpc.ServerInterceptingCall;
  };
  const server = new grpc.Server({ interceptors: [capture] });
  server.addService(
    { hold: method },
    { hold: (_call: unknown, callback: grpc.sendUnaryData<Buffer>) => pending.push(callback) },
  );
  // `ca` makes Node verify alice's chain, so that getAuthContext() has something to return.
  const credentials = createServerCredentials({ cert: issued.server.cert, key: issued.server.key, ca: issued.ca.cert });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", credentials, (e, p) => (e ? reject(e) : resolve(p))),
  );
  const clients: grpc.Client[] = [];
  async function hold(client: IssuedCertificate): Promise<Held> {
    const c = new grpc.Client(
      `127.0.0.1:${port}`,
      grpc.credentials.createSsl(Buffer.from(issued.ca.cert), Buffer.from(client.key), Buffer.from(client.cert)),
      { "grpc.ssl_target_name_override": "localhost" },
    );
    clients.push(c);
    const call = new Promise<grpc.ServerInterceptingCallInterface>((resolve) => arrived.push(resolve));
    c.makeUnaryRequest(
      path,
      (v: Buffer) => v,
      (b: Buffer) => b,
      Buffer.alloc(0),
      () => {},
    );
    return { call: await call, release: () => pending.shift()?.(null, Buffer.alloc(0)) };
  }
  try {
    const alice = await hold(issued.alice);
    const bob = await hold(issued.bob);
    const interceptor = createClientCertServerInterceptor({ store: createThumbprintStore(options.pki.alice.sha1) });
    const descriptor = method as unknown as grpc.ServerMethodDefinition<unknown, unknown>;
    // The first decision of a connection asks the store; wait for it, so
    // that the loops measure the warm path.
    for (const h of [alice, bob]) {
      interceptor(descriptor, h.call);
      await new Promise((r) => setTimeout(r, 20));
    }
    if (interceptor(descriptor, alice.call) !== alice.call)
      throw new Error("grpc-js-ns: alice was not admitted at once");
    if (interceptor(descriptor, bob.call) === bob.call) throw new Error("grpc-js-ns: bob was not refused");

    const identity = (call: grpc.ServerInterceptingCallInterface) => call;
    const emptyNs = time((n) => {
      let ok = 0;
      for (let i = 0; i < n; i++) if (identity(alice.call) === alice.call) ok++;
      return ok;
    });
    const rows: [string, number, string][] = [];
    const add = (name: string, ns: number, what: string) => rows.push([name, ns - emptyNs, what]);
    add(
      "certgate interceptor, admitted",
      time((n) => {
        let ok = 0;
        for (let i = 0; i < n; i++) if (interceptor(descriptor, alice.call) === alice.call) ok++;
        return ok;
      }),
      "stream walk, per-session peer, cached decision; the call handed back untouched",
    );
    add(
      "certgate interceptor, refused",
      time((n) => {
        let ok = 0;
        for (let i = 0; i < n; i++) if (interceptor(descriptor, bob.call) !== bob.call) ok++;
        return ok;
      }),
      "cached refusal: a GatedCall that answers with the prepared status",
    );
    add(
      "streamOf + peerCertificateOf",
      time((n) => {
        let ok = 0;
        for (let i = 0; i < n; i++)
          if (peerCertificateOf({ socket: undefined, stream: streamOf(alice.call) }).certificate !== undefined) ok++;
        return ok;
      }),
      "certgate's way to the peer certificate, once per call",
    );
    add(
      "call.getAuthContext()",
      time((n) => {
        let ok = 0;
        for (let i = 0; i < n; i++) if (alice.call.getAuthContext().sslPeerCertificate !== undefined) ok++;
        return ok;
      }),
      "grpc-js's way: getPeerCertificate() per call, and only for chains Node verified",
    );
    alice.release();
    bob.release();
    const lines = [
      `${batches} batches of about ${batchMs} ms each, median ns per call, less the same loop around an empty function (${fixed(emptyNs, 2)} ns):`,
      ...table(
        ["operation", "net ns/call", "what"],
        rows.map(([name, ns, what]) => [name, fixed(ns), what]),
        [2],
      ),
      "",
    ];
    return {
      title: "grpc-js-ns: in-process cost of certgate/grpc-js per call on a warm connection, and of getAuthContext()",
      lines,
      warnings: [],
      data: { batches, batchMs, emptyNs, rows },
    };
  } finally {
    for (const c of clients) c.close();
    server.forceShutdown();
  }
}
