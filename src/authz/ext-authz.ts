import type * as http from "node:http";
import type * as http2 from "node:http2";
import type { TrustedProxyCheck } from "../proxy/trusted-proxies.js";
import type { AuthzDecide } from "./authz-decision.js";
import type { AuthzRequestEvent } from "./forward-auth.js";

/** The path of Envoy's `envoy.service.auth.v3.Authorization/Check`. */
export const extAuthzCheckPath = "/envoy.service.auth.v3.Authorization/Check";

/** ExtAuthzOptions is what `createExtAuthzHandler` needs. */
export interface ExtAuthzOptions {
  readonly decide: AuthzDecide;
  readonly trust: TrustedProxyCheck;
  readonly onDenied?: (event: AuthzRequestEvent) => void;
}

/** createExtAuthzHandler answers Envoy's Check. */
export function createExtAuthzHandler(
  _options: ExtAuthzOptions,
): (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void {
  return (_req, res) => {
    res.writeHead(501);
    res.end();
  };
}
