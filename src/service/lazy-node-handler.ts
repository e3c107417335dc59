import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import type { ConnectNodeAdapterOptions } from "@connectrpc/connect-node";

/**
 * LazyNodeHandler is a `connectNodeAdapter` handler whose module is imported
 * on first use.
 */
export interface LazyNodeHandler {
  /** The request listener for `http2.createSecureServer`. */
  readonly handler: (req: Http2ServerRequest, res: Http2ServerResponse) => void;
  /**
   * Resolves once `@connectrpc/connect-node` is loaded; rejects, naming the
   * package, when it is not installed.
   */
  readonly ready: Promise<void>;
}

/**
 * createLazyNodeHandler starts importing `@connectrpc/connect-node` and
 * returns a handler built with `connectNodeAdapter(options)` once it is
 * loaded (`what` names the server in the error when it is missing). connect-node is an optional peer dependency: applications on
 * Express or Fastify load certgate's main entry point without it, so no
 * module they load may import it at the top.
 */
export function createLazyNodeHandler(
  options: ConnectNodeAdapterOptions,
  what = "the certificate store server",
): LazyNodeHandler {
  let loaded: LazyNodeHandler["handler"] | undefined;
  const ready = import("@connectrpc/connect-node").then(
    (connectNode) => {
      loaded = connectNode.connectNodeAdapter(options);
    },
    (cause: unknown) => {
      throw new Error(
        `certgate: ${what} needs @connectrpc/connect-node; install it (npm install @connectrpc/connect-node)`,
        { cause },
      );
    },
  );
  // Reported by whoever awaits `ready` (the server's listen()); not an
  // unhandled rejection in the meantime.
  ready.catch(() => {});
  return {
    ready,
    handler(req, res) {
      if (loaded !== undefined) {
        loaded(req, res);
        return;
      }
      // Only a server started without waiting for `ready` gets here.
      ready
        .then(() => loaded?.(req, res))
        .catch(() => {
          if (!res.headersSent) {
            res.writeHead(500).end();
          }
        });
    },
  };
}
