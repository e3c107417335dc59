// Malformed requests, as a hostile client sends them: raw HTTP/2 frames with
// any :authority, and HTTP/1.0 without a Host header.
import * as http2 from "node:http2";
import * as net from "node:net";
import * as tls from "node:tls";

/** TLS options of a raw client: a certificate to present, or none. */
export interface RawTls {
  cert?: string;
  key?: string;
}

/**
 * h2Call sends one POST on a new HTTP/2 session (TLS unless `plaintext`) with
 * the given `:authority`, and resolves with the response status, or with
 * "reset" when the server reset the stream or closed the session instead.
 */
export async function h2Call(
  port: number,
  options: { authority: string; path: string; body?: string; plaintext?: boolean } & RawTls,
): Promise<{ status: number | "reset"; body: string }> {
  const session = options.plaintext
    ? http2.connect(`http://127.0.0.1:${port}`)
    : http2.connect(`https://127.0.0.1:${port}`, {
        rejectUnauthorized: false,
        ...(options.cert === undefined ? {} : { cert: options.cert, key: options.key }),
      });
  try {
    return await new Promise((resolve) => {
      let status: number | "reset" = "reset";
      let body = "";
      session.on("error", () => resolve({ status: "reset", body }));
      const req = session.request({
        ":method": "POST",
        ":path": options.path,
        ":authority": options.authority,
        "content-type": "application/json",
      });
      req.on("response", (h) => (status = Number(h[":status"])));
      req.on("data", (d: Buffer) => (body += d.toString()));
      req.on("error", () => (status = "reset"));
      req.on("close", () => resolve({ status, body }));
      req.end(options.body ?? "{}");
    });
  } finally {
    session.destroy();
  }
}

/**
 * http10WithoutHost sends `POST PATH HTTP/1.0` without a Host header (over
 * TLS with ALPN http/1.1 unless `plaintext`) and resolves with the status of
 * the response, or 0 when the server closed the connection without one.
 */
export function http10WithoutHost(port: number, path: string, plaintext = false): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket: net.Socket = plaintext
      ? net.connect(port, "127.0.0.1")
      : tls.connect({ port, host: "127.0.0.1", rejectUnauthorized: false, ALPNProtocols: ["http/1.1"] });
    let text = "";
    socket.once(plaintext ? "connect" : "secureConnect", () => {
      socket.write(`POST ${path} HTTP/1.0\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}`);
    });
    socket.on("data", (d: Buffer) => (text += d.toString("latin1")));
    socket.on("error", (e: NodeJS.ErrnoException) => (e.code === "ECONNRESET" ? socket.destroy() : reject(e)));
    socket.on("close", () => resolve(Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0)));
  });
}
