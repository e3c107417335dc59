// decision-ns: the in-process cost of certgate's per-call work on a warm
// connection, in nanoseconds: the decision core, the request gate, the
// context values function, and the interceptor wrapper, each called in a
// tight loop with a PeerCertificate read once from a real TLS connection.
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { createHandlerContext, type UnaryRequest, type UnaryResponse } from "@connectrpc/connect";
import { EchoService } from "../src/gen/certgate/example/v1/echo_pb.js";
import { createDecide } from "../src/decision/decision.js";
import { createClientCertGate } from "../src/connect/client-cert-gate.js";
import { createClientCertInterceptor } from "../src/connect/client-cert-interceptor.js";
import { peerCertificateContextValues } from "../src/connect/context-values.js";
import { peerCertificateOf, type PeerCertificate } from "../src/core/peer-certificate.js";
import { createThumbprintStore } from "../src/stores/thumbprint-store.js";
import type { IssuedCertificate } from "../src/dev-certificates.js";
import type { BenchOptions, SectionResult } from "./section.js";
import { createNsTimer } from "./ns-timer.js";
import { fixed, table } from "./stats.js";

/** The target for one warm decision, ns. */
const targetNs = 1000;

export interface Held {
  /** A live request of the connection; its response is held open while measuring. */
  readonly req: http2.Http2ServerRequest;
  release(): void;
}

// Opens a TLS connection presenting `client` and holds one request open, so
// that peerCertificateOf(req) sees a live HTTP/2 session, as in a real call.
export async function holdRequest(
  server: http2.Http2SecureServer,
  port: number,
  ca: string,
  client: IssuedCertificate,
): Promise<Held> {
  const arrived = new Promise<{ req: http2.Http2ServerRequest; res: http2.Http2ServerResponse }>((resolve) => {
    server.once("request", (req, res) => resolve({ req, res }));
  });
  const session = http2.connect(`https://127.0.0.1:${port}`, {
    ca,
    cert: client.cert,
    key: client.key,
    servername: "localhost",
  });
  session.on("error", () => {});
  const stream = session.request({ ":method": "POST", ":path": "/hold" });
  stream.on("error", () => {});
  stream.resume();
  const { req, res } = await arrived;
  return {
    req,
    release() {
      res.end();
      stream.close();
      session.close();
    },
  };
}

/** HeldPeers are alice's and bob's connections to one server, each with a request held open. */
export interface HeldPeers {
  readonly alice: Held;
  readonly bob: Held;
  /** The server's port. */
  readonly port: number;
  /** Releases the requests and closes the server. */
  close(): Promise<void>;
}

/**
 * holdPeers starts a TLS server on 127.0.0.1 that asks for client
 * certificates, and holds one request of alice's and one of bob's on it.
 */
export async function holdPeers(issued: BenchOptions["pki"]["issued"]): Promise<HeldPeers> {
  const server = http2.createSecureServer({
    cert: issued.server.cert,
    key: issued.server.key,
    requestCert: true,
    rejectUnauthorized: false,
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const held: Held[] = [];
  const close = async () => {
    for (const h of held) h.release();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  try {
    const alice = await holdRequest(server, port, issued.ca.cert, issued.alice);
    held.push(alice);
    const bob = await holdRequest(server, port, issued.ca.cert, issued.bob);
    held.push(bob);
    return { alice, bob, port, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** One measured operation: ns per call, median over batches. */
interface Measured {
  readonly name: string;
  readonly rawNs: number;
  readonly netNs: number;
  readonly note: string;
}

/**
 * run measures each operation's ns per call in batches of tight loops and
 * subtracts the cost of the same loop around an empty function.
 */
export async function run(options: BenchOptions): Promise<SectionResult> {
  const peers = await holdPeers(options.pki.issued);
  try {
    const { alice, bob, port } = peers;
    const store = createThumbprintStore(options.pki.alice.sha1);
    const decide = createDecide({ store });
    const alicePeer: PeerCertificate = peerCertificateOf(alice.req);
    const bobPeer: PeerCertificate = peerCertificateOf(bob.req);
    // The first decision of a connection asks the store (a promise); every
    // later one on that connection is the warm path measured here.
    if ((await decide(alicePeer)).kind !== "admitted") throw new Error("decision-ns: alice was not admitted");
    if ((await decide(bobPeer)).kind !== "refused") throw new Error("decision-ns: bob was not refused");

    const gate = createClientCertGate({ store });
    const contextFor = (req: http2.Http2ServerRequest) =>
      createHandlerContext({
        service: EchoService,
        method: EchoService.method.echo,
        protocolName: "connect",
        requestMethod: "POST",
        url: `https://127.0.0.1:${port}/certgate.example.v1.EchoService/Echo`,
        contextValues: peerCertificateContextValues(req),
      });
    const aliceContext = contextFor(alice.req);
    const bobContext = contextFor(bob.req);
    await gate(aliceContext);
    await Promise.resolve(gate(bobContext)).catch(() => undefined);

    const interceptor = createClientCertInterceptor({ store });
    const response = {} as UnaryResponse;
    const next = (_req: UnaryRequest): Promise<UnaryResponse> => Promise.resolve(response);
    const wrapped = interceptor(next as never) as unknown as typeof next;
    const unaryRequest = {
      stream: false,
      service: EchoService,
      method: EchoService.method.echo,
      requestMethod: "POST",
      url: aliceContext.url,
      signal: aliceContext.signal,
      header: new Headers(),
      contextValues: peerCertificateContextValues(alice.req),
      message: {},
    } as unknown as UnaryRequest;
    await wrapped(unaryRequest);

    const { time, timeAsync, batches, batchMs } = createNsTimer(options, "decision-ns");

    const identity = (peer: PeerCertificate | undefined): PeerCertificate | undefined => peer;
    const emptyNs = time((n) => {
      let ok = 0;
      for (let i = 0; i < n; i++) if (identity(alicePeer) === alicePeer) ok++;
      return ok;
    });
    const results: Measured[] = [];
    const add = (name: string, rawNs: number, note: string, baseNs = emptyNs) =>
      results.push({ name, rawNs, netNs: rawNs - baseNs, note });

    add(
      "decide(peer), admitted",
      time((n) => {
        let ok = 0;
        for (let i = 0; i < n; i++) if ((decide(alicePeer) as { kind: string }).kind === "admitted") ok++;
        return ok;
      }),
      "the decision core, warm connection",
    );
    add(
      "decide(peer), refused",
      time((n) => {
        let ok = 0;
        for (let i = 0; i < n; i++) if ((decide(bobPeer) as { kind: string }).kind === "refused") ok++;
        return ok;
      }),
      "cached refusal, no error built",
    );
    add(
      "gate(context), admitted",
      time((n) => {
        let ok = 0;
        for (let i = 0; i < n; i++) if (gate(aliceContext) === undefined) ok++;
        return ok;
      }),
      "createClientCertGate: decide + set clientCertificateKey",
    );
    add(
      "peerCertificateContextValues(req)",
      time((n) => {
        let ok = 0;
        for (let i = 0; i < n; i++) if (peerCertificateContextValues(alice.req) !== undefined) ok++;
        return ok;
      }),
      "per request: new ContextValues + per-connection look-up",
    );
    // The gate hands a refusal over as a rejected promise (see
    // client-cert-gate.ts), which Connect awaits; so does this loop, since
    // millions of rejections left pending in one synchronous loop would
    // measure V8's rejection tracking instead.
    const ignore = () => false;
    add(
      "gate(context), refused",
      await timeAsync(async (n) => {
        let ok = 0;
        for (let i = 0; i < n; i++) {
          const result = gate(bobContext);
          if (result instanceof Promise && (await result.then(() => true, ignore)) === false) ok++;
        }
        return ok;
      }),
      "includes building the ConnectError; awaited",
    );
    const nextNs = await timeAsync(async (n) => {
      let ok = 0;
      for (let i = 0; i < n; i++) if ((await next(unaryRequest)) === response) ok++;
      return ok;
    });
    add(
      "interceptor(next)(req), admitted",
      await timeAsync(async (n) => {
        let ok = 0;
        for (let i = 0; i < n; i++) if ((await wrapped(unaryRequest)) === response) ok++;
        return ok;
      }),
      "async wrapper; loop and await of next() subtracted",
      nextNs,
    );

    const decideNs = results[0]?.netNs ?? NaN;
    const gatePathNs = (results[2]?.netNs ?? NaN) + (results[3]?.netNs ?? NaN);
    const lines = [
      `${batches} batches of about ${batchMs} ms each, median ns per call; "net" subtracts the same loop around an empty function (${fixed(emptyNs, 2)} ns):`,
      ...table(
        ["operation", "ns/call", "net ns/call", "what"],
        results.map((r) => [r.name, fixed(r.rawNs), fixed(r.netNs), r.note]),
        [3],
      ),
      "",
      `  warm decision: ${fixed(decideNs)} ns (${decideNs < targetNs ? "within" : "over"} the 1 µs target)`,
      `  certgate's in-process work per admitted call through the gate (context values + gate): ${fixed(gatePathNs)} ns`,
      "",
    ];
    return {
      title: "decision-ns: in-process cost of one decision on a warm connection",
      lines,
      warnings: [],
      data: { batches, batchMs, emptyNs, results },
    };
  } finally {
    await peers.close();
  }
}
