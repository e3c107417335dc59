import type * as http2 from "node:http2";
import type { Http2SessionManager, Http2SessionOptions } from "@connectrpc/connect-node";

type ConnectNode = typeof import("@connectrpc/connect-node");

/**
 * RotatingSessions is a connect-node HTTP/2 session manager whose TLS
 * options can change: new calls go to a connection made with the newest
 * options, calls in progress finish on theirs.
 */
export interface RotatingSessions {
  readonly authority: string;
  request(
    method: string,
    path: string,
    headers: http2.OutgoingHttpHeaders,
    options: Omit<http2.ClientSessionRequestOptions, "signal">,
  ): Promise<http2.ClientHttp2Stream>;
  notifyResponseByteRead(stream: http2.ClientHttp2Stream): void;
  /** Sends the next calls over a new connection made with `tls`. */
  rotate(tls: http2.SecureClientSessionOptions): void;
  /** Ends every connection. */
  close(): void;
}

/**
 * createRotatingSessions wraps connect-node's `Http2SessionManager`: one
 * manager (one connection, kept alive as connect-node does) per set of TLS
 * options; a replaced manager is closed when its last stream closes.
 */
export function createRotatingSessions(
  node: ConnectNode,
  url: URL,
  sessionOptions: Http2SessionOptions | undefined,
  tls: http2.SecureClientSessionOptions,
): RotatingSessions {
  const open = new Map<Http2SessionManager, number>();
  const retired = new Set<Http2SessionManager>();
  const managerOf = new WeakMap<http2.ClientHttp2Stream, Http2SessionManager>();
  const make = (options: http2.SecureClientSessionOptions) =>
    new node.Http2SessionManager(url, sessionOptions, options);
  let current = make(tls);
  const release = (manager: Http2SessionManager) => {
    const left = (open.get(manager) ?? 1) - 1;
    if (left > 0) {
      open.set(manager, left);
      return;
    }
    open.delete(manager);
    if (retired.delete(manager)) manager.abort();
  };
  const retire = (manager: Http2SessionManager) => {
    if (open.has(manager)) retired.add(manager);
    else manager.abort();
  };
  return {
    authority: current.authority,
    async request(method, path, headers, options) {
      const manager = current;
      open.set(manager, (open.get(manager) ?? 0) + 1);
      let stream: http2.ClientHttp2Stream;
      try {
        stream = await manager.request(method, path, headers, options);
      } catch (error) {
        release(manager);
        throw error;
      }
      managerOf.set(stream, manager);
      stream.once("close", () => release(manager));
      return stream;
    },
    notifyResponseByteRead(stream) {
      managerOf.get(stream)?.notifyResponseByteRead(stream);
    },
    rotate(options) {
      const old = current;
      current = make(options);
      retire(old);
    },
    close() {
      for (const manager of [current, ...retired, ...open.keys()]) manager.abort();
      retired.clear();
    },
  };
}
