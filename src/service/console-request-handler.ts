import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { gateCoreOf } from "../connect/client-cert-gate.js";
import { peerCertificateOf } from "../core/peer-certificate.js";
import { CertificateStoreService } from "../gen/certgate/v1/certificate_store_pb.js";
import type { Role } from "./access.js";
import { loadConsoleAssets } from "./console-assets.js";
import { createConsoleHandler, type ConsoleHandler } from "./console-handler.js";
import { refuseForeignOrigin } from "./foreign-origin.js";

/**
 * ConsoleRequestOptions configures `consoleRequestHandler`.
 */
export interface ConsoleRequestOptions {
  /** Serve the console: see `CertificateStoreServerOptions.console`. */
  console: boolean | { directory?: string };
  /** The store service's access gate, whose decision gives the page its role. */
  requestGate: unknown;
}

const service = `/${CertificateStoreService.typeName}/`;
const mutating = new Set([`${service}CreateCertificate`, `${service}DeleteCertificate`]);

/**
 * consoleRequestHandler wraps the server's RPC handler: calls that change
 * the store from a foreign web origin are refused, and with `console` the
 * console's page and files are served before the RPCs. The assets are read
 * at start-up, so that a missing build fails there.
 */
export function consoleRequestHandler(
  next: (req: Http2ServerRequest, res: Http2ServerResponse) => void,
  options: ConsoleRequestOptions,
): (req: Http2ServerRequest, res: Http2ServerResponse) => void {
  let pages: ConsoleHandler | undefined;
  if (options.console !== false) {
    const core = gateCoreOf(options.requestGate);
    if (core === undefined) throw new TypeError("console: the request gate has no decision core");
    const directory = options.console === true ? undefined : options.console.directory;
    pages = createConsoleHandler({
      assets: loadConsoleAssets(directory),
      async roleOf(req): Promise<Role | undefined> {
        const peer = peerCertificateOf(req);
        if (peer.certificate === undefined) return undefined;
        if ((await core.decide(peer, `${service}DeleteCertificate`)).kind === "admitted") return "admin";
        if ((await core.decide(peer, `${service}ListCertificates`)).kind === "admitted") return "reader";
        return undefined;
      },
    });
  }
  const isMutating = (path: string) => mutating.has(path);
  return (req, res) => {
    let handled: boolean;
    try {
      handled = refuseForeignOrigin(req, res, isMutating) || pages?.(req, res) === true;
    } catch {
      // Nothing a client sends may end the process (as guardRequestHandler for the RPCs).
      if (!res.headersSent) res.writeHead(400).end();
      else res.destroy();
      return;
    }
    if (!handled) next(req, res);
  };
}
