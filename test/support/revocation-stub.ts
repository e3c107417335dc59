// A node:http server on loopback that answers revocation requests the way a
// broken or hostile responder would, for the failure-mode tests.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/** How the stub answers. */
export type StubMode =
  | { kind: "bytes"; bytes: Uint8Array; status?: number }
  | { kind: "status"; status: number }
  | { kind: "huge" }
  | { kind: "redirect"; location?: string }
  | { kind: "silent" };

/** A running stub. */
export interface RevocationStub {
  url: string;
  mode: StubMode;
  /** Requests received, with their bodies. */
  readonly requests: { method: string; url: string; body: Buffer }[];
  /** Responses whose connection the client closed before the end (a huge body cut off). */
  readonly cutOff: number;
  close(): Promise<void>;
}

/** startRevocationStub listens on 127.0.0.1, port 0. */
export async function startRevocationStub(mode: StubMode): Promise<RevocationStub> {
  const sockets = new Set<Socket>();
  const stub: RevocationStub & { cutOff: number } = {
    url: "",
    mode,
    requests: [],
    cutOff: 0,
    close: async () => undefined,
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      stub.requests.push({ method: req.method ?? "", url: req.url ?? "", body: Buffer.concat(chunks) });
      const m = stub.mode;
      switch (m.kind) {
        case "bytes":
          res.writeHead(m.status ?? 200, { "content-type": "application/octet-stream" });
          res.end(m.bytes);
          return;
        case "status":
          res.writeHead(m.status);
          res.end("error");
          return;
        case "redirect":
          res.writeHead(302, { location: m.location ?? req.url ?? "/" });
          res.end();
          return;
        case "silent":
          return; // never answers
        case "huge": {
          // No content-length: the limit must hold while the body streams.
          res.writeHead(200, { "content-type": "application/ocsp-response" });
          const chunk = Buffer.alloc(64 * 1024, 0x30);
          let sent = 0;
          const pump = () => {
            while (sent < 256 * 1024 * 1024) {
              sent += chunk.length;
              if (!res.write(chunk)) {
                res.once("drain", pump);
                return;
              }
            }
            res.end();
          };
          res.on("close", () => {
            if (!res.writableFinished) stub.cutOff++;
          });
          pump();
          return;
        }
      }
    });
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  stub.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  stub.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    });
  return stub;
}
