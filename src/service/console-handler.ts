import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import type { Role } from "./access.js";
import type { ConsoleAsset, ConsoleAssets } from "./console-assets.js";

/**
 * consoleSecurityHeaders are sent with every console response: scripts,
 * styles and calls only from the server itself, nothing inline, no framing,
 * no referrer, no sniffing.
 */
export const consoleSecurityHeaders: Readonly<Record<string, string>> = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
  "permissions-policy": "camera=(), microphone=(), geolocation=()",
};

/**
 * ConsoleHandlerOptions configures `createConsoleHandler`.
 */
export interface ConsoleHandlerOptions {
  /** The built console (`loadConsoleAssets`). Required. */
  assets: ConsoleAssets;
  /**
   * The role of the request's client certificate, as the store's access
   * gate decides it; undefined without one. Required.
   */
  roleOf: (req: Http2ServerRequest) => Promise<Role | undefined>;
}

/**
 * ConsoleHandler answers the console's own requests (`GET /`, `GET
 * /assets/...`) and returns true, or returns false for every other request,
 * which the caller passes on (the RPCs).
 */
export type ConsoleHandler = (req: Http2ServerRequest, res: Http2ServerResponse) => boolean;

/**
 * createConsoleHandler serves the console: the page at `/` for a client
 * certificate with a role (which the page reads from a `<meta>`; the RPCs
 * decide again on every call), a plain help page without one, and the
 * hashed scripts and styles with a year of caching. The page itself is
 * never cached: it carries the role.
 */
export function createConsoleHandler(options: ConsoleHandlerOptions): ConsoleHandler {
  const { assets, roleOf } = options;
  const pages = new Map<Role, Buffer>(
    (["admin", "reader"] as const).map((role) => [role, Buffer.from(assets.index.replaceAll("{{role}}", role))]),
  );
  return (req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    const path = (req.url ?? "").split("?")[0] ?? "";
    if (path === "/" || path === "/index.html") {
      roleOf(req).then(
        (role) => {
          const page = role === undefined ? undefined : pages.get(role);
          if (page === undefined) {
            send(req, res, 403, assets.help.body, assets.help.type, "no-store");
          } else {
            send(req, res, 200, page, "text/html; charset=utf-8", "no-store");
          }
        },
        () => send(req, res, 503, Buffer.from("store unavailable\n"), "text/plain; charset=utf-8", "no-store"),
      );
      return true;
    }
    if (path.startsWith("/assets/")) {
      const file = assets.files.get(path.slice("/assets/".length));
      if (file === undefined) {
        send(req, res, 404, Buffer.from("not found\n"), "text/plain; charset=utf-8", "no-store");
      } else if (req.headers["if-none-match"] === file.etag) {
        sendAsset(req, res, 304, file);
      } else {
        sendAsset(req, res, 200, file);
      }
      return true;
    }
    if (path === "/favicon.ico") {
      send(req, res, 204, Buffer.alloc(0), "image/x-icon", "public, max-age=86400");
      return true;
    }
    return false;
  };
}

function sendAsset(req: Http2ServerRequest, res: Http2ServerResponse, status: number, file: ConsoleAsset): void {
  // The names carry a hash of the contents: a new build has new names.
  res.setHeader("etag", file.etag);
  send(
    req,
    res,
    status,
    status === 304 ? Buffer.alloc(0) : file.body,
    file.type,
    "public, max-age=31536000, immutable",
  );
}

function send(
  req: Http2ServerRequest,
  res: Http2ServerResponse,
  status: number,
  body: Buffer,
  type: string,
  cache: string,
): void {
  if (res.headersSent || res.destroyed) return;
  for (const [name, value] of Object.entries(consoleSecurityHeaders)) res.setHeader(name, value);
  res.setHeader("cache-control", cache);
  res.setHeader("content-type", type);
  res.setHeader("content-length", body.length);
  res.writeHead(status);
  if (req.method === "HEAD") res.end();
  else res.end(body);
}
