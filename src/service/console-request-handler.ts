import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { gateCoreOf, type GateCore } from "../connect/client-cert-gate.js";
import { refusedAs } from "../core/decision-report.js";
import { peerCertificateOf } from "../core/peer-certificate.js";
import { refusals } from "../core/refusal-reasons.js";
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
const mutating = new Set([
  `${service}CreateCertificate`,
  `${service}CreateCertificates`,
  `${service}DeleteCertificate`,
]);

/**
 * consoleRequestHandler wraps the server's RPC handler: calls that change
 * the store from a foreign web origin are refused, and reported as the
 * access gate reports its refusals (so the audit trail records them, with
 * the reason `foreign_origin`); with `console` the
 * console's page and files are served before the RPCs. The assets are read
 * at start-up, so that a missing build fails there.
 */
export function consoleRequestHandler(
  next: (req: Http2ServerRequest, res: Http2ServerResponse) => void,
  options: ConsoleRequestOptions,
): (req: Http2ServerRequest, res: Http2ServerResponse) => void {
  let pages: ConsoleHandler | undefined;
  const core = gateCoreOf(options.requestGate);
  if (options.console !== false) {
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
      if (refuseForeignOrigin(req, res, isMutating)) {
        reportForeignOrigin(core, req);
        return;
      }
      handled = pages?.(req, res) === true;
    } catch {
      // Nothing a client sends may end the process (as guardRequestHandler for the RPCs).
      if (!res.headersSent) res.writeHead(400).end();
      else res.destroy();
      return;
    }
    if (!handled) next(req, res);
  };
}

// The refusal reported through the gate's core, as the gate reports its own:
// the service's audit trail, `onDecision` and the decision metrics hear it.
function reportForeignOrigin(core: GateCore | undefined, req: Http2ServerRequest): void {
  if (core === undefined) return;
  try {
    const procedure = (req.url ?? "").split("?")[0] ?? "";
    core.report(refusedAs(refusals.foreign_origin, peerCertificateOf(req).certificate), procedure, "gate");
  } catch {
    // The call is refused already; a failing hook changes nothing of that.
  }
}
