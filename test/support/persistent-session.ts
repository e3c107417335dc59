// One persistent HTTP/2 connection making many calls, for the fast refusal
// path and its GOAWAY bound: each call's status, headers, body and trailers,
// and how many GOAWAY frames the connection got.
import * as http2 from "node:http2";

/** One answered call, as it came over the wire. */
export interface WireCall {
  status: number;
  /** Response headers without `date`. */
  headers: Record<string, unknown>;
  body: string;
  trailers: Record<string, unknown>;
}

/** A persistent connection. */
export interface PersistentSession {
  readonly session: http2.ClientHttp2Session;
  /** GOAWAY frames received so far. */
  goaways(): number;
  /** One POST with a JSON body (or `body`), on this connection. */
  call(path: string, headers?: http2.OutgoingHttpHeaders, body?: string | Uint8Array): Promise<WireCall>;
  /** Closes the connection and waits for it. */
  close(): Promise<void>;
}

/** Opens a TLS HTTP/2 connection presenting `cert`/`key` if given. */
export function openPersistentSession(
  url: string,
  tls: { ca?: string; cert?: string; key?: string },
): PersistentSession {
  const session = http2.connect(url, { rejectUnauthorized: tls.ca !== undefined, ...tls });
  session.on("error", () => {});
  let goaways = 0;
  session.on("goaway", () => goaways++);
  return {
    session,
    goaways: () => goaways,
    call(path, headers = { "content-type": "application/json" }, body = "{}") {
      return new Promise<WireCall>((resolve, reject) => {
        const stream = session.request({ ":method": "POST", ":path": path, ...headers });
        const chunks: Buffer[] = [];
        let response: http2.IncomingHttpHeaders = {};
        let trailers: http2.IncomingHttpHeaders = {};
        stream.on("response", (h) => (response = h));
        stream.on("trailers", (t) => (trailers = t));
        stream.on("data", (c: Buffer) => chunks.push(c));
        stream.on("error", reject);
        stream.on("close", () => {
          const { date: _date, ...rest } = response;
          resolve({
            status: Number(response[":status"]),
            headers: rest,
            body: Buffer.concat(chunks).toString(),
            trailers: { ...trailers },
          });
        });
        stream.end(body);
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        if (session.destroyed) return resolve();
        session.once("close", () => resolve());
        session.close();
      }),
  };
}
