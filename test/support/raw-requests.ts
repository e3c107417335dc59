// Malformed requests, as a hostile client sends them: raw HTTP/2 frames with
// any :authority, and HTTP/1.0 without a Host header.
import * as http from "node:http";
import * as http2 from "node:http2";
import * as https from "node:https";
import * as net from "node:net";
import * as tls from "node:tls";

/** TLS options of a raw client: a certificate to present, or none. */
export interface RawTls {
  cert?: string;
  key?: string;
}

/**
 * http1Connect opens a TLS connection to 127.0.0.1:`port` offering only
 * HTTP/1.1 (ALPN), trusting any server certificate, presenting `client`'s.
 */
export function http1Connect(port: number, client: RawTls = {}): tls.TLSSocket {
  return tls.connect({
    port,
    host: "127.0.0.1",
    rejectUnauthorized: false,
    ALPNProtocols: ["http/1.1"],
    ...(client.cert === undefined ? {} : { cert: client.cert, key: client.key }),
  });
}

/**
 * h2Call sends one POST on a new HTTP/2 session (TLS unless `plaintext`) with
 * the given `:authority`, and resolves with the response status, or with
 * "reset" when the server reset the stream or closed the session instead.
 */
export async function h2Call(
  port: number,
  options: {
    authority: string;
    path: string;
    body?: string;
    plaintext?: boolean;
    headers?: Record<string, string>;
  } & RawTls,
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
        ...options.headers,
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
    const socket: net.Socket = plaintext ? net.connect(port, "127.0.0.1") : http1Connect(port);
    let text = "";
    socket.once(plaintext ? "connect" : "secureConnect", () => {
      socket.write(`POST ${path} HTTP/1.0\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}`);
    });
    socket.on("data", (d: Buffer) => (text += d.toString("latin1")));
    socket.on("error", (e: NodeJS.ErrnoException) => (e.code === "ECONNRESET" ? socket.destroy() : reject(e)));
    socket.on("close", () => resolve(Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0)));
  });
}

/** What `streamLargeBody` saw. */
export interface LargeBodyResult {
  /** The response status (0 when the server never answered). */
  status: number;
  body: string;
  /** Bytes of the body the client had handed over when the response arrived. */
  sentAtResponse: number;
  /** The size of the whole body; never buffered, generated as it is sent. */
  total: number;
  /** grpc-status, from the trailers or a trailers-only response (HTTP/2 only). */
  grpcStatus?: string;
}

/**
 * streamLargeBody POSTs a `total`-byte body (64 MiB by default), generated
 * chunk by chunk while honouring backpressure, on HTTP/2 (`url` https:// or
 * http:// for h2c) or HTTP/1.1 (`http1`), and stops sending as soon as the
 * response arrives. A server that refuses before reading the body answers
 * after a window's worth of bytes; one that buffers answers after them all.
 */
export async function streamLargeBody(
  url: string,
  options: {
    path: string;
    http1?: boolean;
    total?: number;
    cert?: string;
    key?: string;
    headers?: Record<string, string>;
    /** Sent first, counted in `total` (such as a gRPC frame header). */
    prefix?: Uint8Array;
  },
): Promise<LargeBodyResult> {
  const total = options.total ?? 64 * 1024 * 1024;
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  const headers = { "content-type": "application/json", ...options.headers };
  const tlsOptions = {
    rejectUnauthorized: false,
    ...(options.cert === undefined ? {} : { cert: options.cert, key: options.key }),
  };
  let sent = 0;
  let answered = false;
  const pump = async (writable: NodeJS.WritableStream) => {
    if (options.prefix !== undefined) {
      writable.write(options.prefix);
      sent += options.prefix.length;
    }
    while (sent < total && !answered) {
      const n = Math.min(chunk.length, total - sent);
      sent += n;
      if (!writable.write(chunk.subarray(0, n))) {
        await new Promise<void>((resolve) => {
          const done = () => {
            writable.off("drain", done);
            writable.off("close", done);
            resolve();
          };
          writable.on("drain", done);
          writable.on("close", done);
        });
      }
      if ((writable as unknown as { destroyed?: boolean }).destroyed) return;
    }
    if (!answered) writable.end();
  };
  if (options.http1) {
    const request = url.startsWith("https:") ? https.request : http.request;
    return new Promise((resolve, reject) => {
      const req = request(new URL(options.path, url), { method: "POST", headers, ...tlsOptions });
      req.on("response", (res: http.IncomingMessage) => {
        answered = true;
        const sentAtResponse = sent;
        let body = "";
        res.on("data", (d: Buffer) => (body += d.toString()));
        res.on("end", () => {
          req.destroy();
          resolve({ status: res.statusCode ?? 0, body, sentAtResponse, total });
        });
      });
      req.on("error", (e: Error) => (answered ? undefined : reject(e)));
      void pump(req);
    });
  }
  const session = http2.connect(url, tlsOptions);
  try {
    return await new Promise((resolve, reject) => {
      session.on("error", reject);
      const req = session.request({ ":method": "POST", ":path": options.path, ...headers });
      let status = 0;
      let sentAtResponse = -1;
      let body = "";
      let grpcStatus: string | undefined;
      req.on("response", (h) => {
        answered = true;
        sentAtResponse = sent;
        status = Number(h[":status"]);
        grpcStatus = h["grpc-status"] as string | undefined;
      });
      req.on("trailers", (t) => (grpcStatus = (t["grpc-status"] as string | undefined) ?? grpcStatus));
      req.on("data", (d: Buffer) => (body += d.toString()));
      // The server has answered in full: stop the upload (a server that
      // leaves its side of the stream open would otherwise wait for it).
      req.on("end", () => req.close());
      req.on("error", () => {});
      req.on("close", () =>
        resolve({
          status,
          body,
          sentAtResponse: sentAtResponse < 0 ? sent : sentAtResponse,
          total,
          ...(grpcStatus === undefined ? {} : { grpcStatus }),
        }),
      );
      void pump(req);
    });
  } finally {
    session.destroy();
  }
}

/** What `http1Upload` saw, on the client's socket. */
export interface Http1UploadResult {
  /** The response's status, 0 without one. */
  status: number;
  /** The response's `connection` header, lower case, if any. */
  connection: string | undefined;
  /** Body bytes the client wrote (handed to its socket) before the server closed. */
  sent: number;
  /** Whether the server half-closed (FIN) or reset the connection. */
  closedByServer: boolean;
}

/**
 * http1Upload POSTs a `total`-byte body (a Connect JSON request's worth of
 * spaces) on one TLS connection with ALPN http/1.1, and goes on sending
 * after the response, as a hostile client does, until the server closes the
 * connection or the body is sent; then it reads what the server said.
 */
export function http1Upload(
  port: number,
  options: { path: string; total: number; contentType?: string } & RawTls,
): Promise<Http1UploadResult> {
  return new Promise((resolve, reject) => {
    const socket = http1Connect(port, options);
    let received = "";
    let sent = 0;
    let closedByServer = false;
    let done = false;
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const pump = () => {
      while (!done && sent < options.total) {
        const n = Math.min(chunk.length, options.total - sent);
        sent += n;
        if (!socket.write(chunk.subarray(0, n))) {
          socket.once("drain", pump);
          return;
        }
      }
    };
    socket.once("secureConnect", () => {
      socket.write(
        `POST ${options.path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: ${options.contentType ?? "application/json"}\r\ncontent-length: ${options.total}\r\n\r\n`,
      );
      pump();
    });
    socket.on("data", (d: Buffer) => (received += d.toString("latin1")));
    socket.on("end", () => {
      closedByServer = true;
      done = true;
      socket.end();
    });
    socket.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "ECONNRESET" || e.code === "EPIPE") {
        closedByServer = true;
        done = true;
        socket.destroy();
      } else {
        reject(e);
      }
    });
    socket.on("close", () => {
      done = true;
      const head = received.slice(0, Math.max(0, received.indexOf("\r\n\r\n")));
      resolve({
        status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0),
        connection: /\r\nconnection: *([^\r]*)/i.exec(head)?.[1]?.toLowerCase(),
        sent,
        closedByServer,
      });
    });
  });
}
