// One real mTLS handshake on 127.0.0.1, and what the server saw of the
// client: its serialized TLS session and what getPeerCertificate(false) said.
import type { AddressInfo } from "node:net";
import * as tls from "node:tls";

/** What the server saw of one client connection. */
export interface SeenSession {
  /** A copy of `socket.getSession()`, or undefined. */
  readonly session: Buffer | undefined;
  /** `socket.getPeerCertificate(false)`. */
  readonly info: tls.PeerCertificate | Record<string, never>;
  /** The client's session, for resuming it. */
  readonly clientSession: Buffer | undefined;
  /** Whether the server saw a resumed session. */
  readonly reused: boolean;
}

/** A client of `captureTlsSessions`: PEM key and certificate (none without), and how to connect. */
export interface SessionClient {
  readonly key?: string;
  readonly cert?: string;
  /** Sent along with the certificate: Node clients with `ca` send the chain too. */
  readonly ca?: string;
  readonly maxVersion?: tls.SecureVersion;
  /** Resumes the session of the client before it. */
  readonly resume?: boolean;
}

/**
 * captureTlsSessions runs a TLS server (asking for client certificates,
 * accepting any) and connects each client in turn, returning what the
 * server saw of each. The server and sockets are closed before it returns.
 */
export async function captureTlsSessions(
  server: { key: string; cert: string },
  clients: readonly SessionClient[],
): Promise<SeenSession[]> {
  let seen: ((s: Omit<SeenSession, "clientSession">) => void) | undefined;
  const tlsServer = tls.createServer({ ...server, requestCert: true, rejectUnauthorized: false }, (socket) => {
    const session = socket.getSession();
    seen?.({
      session: session === undefined ? undefined : Buffer.from(session),
      info: socket.getPeerCertificate(false),
      reused: socket.isSessionReused(),
    });
    socket.end("ok");
  });
  await new Promise<void>((resolve) => tlsServer.listen(0, "127.0.0.1", resolve));
  const port = (tlsServer.address() as AddressInfo).port;
  const results: SeenSession[] = [];
  let previous: Buffer | undefined;
  try {
    for (const { resume, ...client } of clients) {
      const serverSide = new Promise<Omit<SeenSession, "clientSession">>((resolve) => {
        seen = resolve;
      });
      let clientSession: Buffer | undefined;
      await new Promise<void>((resolve, reject) => {
        const socket = tls.connect({
          port,
          host: "127.0.0.1",
          rejectUnauthorized: false,
          ...client,
          ...(resume === true ? { session: previous } : {}),
        });
        socket.on("session", (s: Buffer) => {
          clientSession ??= s;
        });
        socket.on("data", () => {});
        socket.on("error", reject);
        socket.on("close", () => resolve());
      });
      results.push({ ...(await serverSide), clientSession });
      previous = clientSession;
    }
  } finally {
    await new Promise<void>((resolve) => tlsServer.close(() => resolve()));
  }
  return results;
}
