import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { refusals } from "../core/refusal-reasons.js";

/**
 * isForeignOrigin tells whether a request comes from a web page of another
 * origin than the server itself: its `Origin` header (sent by browsers) or
 * `Sec-Fetch-Site` names another site. Clients that are not browsers send
 * neither and are never foreign. A browser presents its client certificate
 * to any page that calls the server, so a page elsewhere must not be able
 * to change the store with the admin's certificate.
 */
export function isForeignOrigin(req: Http2ServerRequest): boolean {
  const site = req.headers["sec-fetch-site"];
  if (site !== undefined && site !== "same-origin" && site !== "none") return true;
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  const authority = req.headers[":authority"] ?? req.headers.host;
  return typeof authority !== "string" || origin !== `https://${authority}`;
}

/**
 * refuseForeignOrigin answers a call from a foreign origin with the Connect
 * error `permission_denied` (HTTP 403) and returns true, or returns false
 * and leaves the request alone. `isMutating` names the RPC paths to guard.
 */
export function refuseForeignOrigin(
  req: Http2ServerRequest,
  res: Http2ServerResponse,
  isMutating: (path: string) => boolean,
): boolean {
  if (req.method !== "POST" && req.method !== "GET") return false;
  const path = (req.url ?? "").split("?")[0] ?? "";
  if (!isMutating(path) || !isForeignOrigin(req)) return false;
  const body = JSON.stringify({ code: "permission_denied", message: refusals.foreign_origin.message });
  res.writeHead(403, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
  // The request body is not read: drop it with the stream.
  req.resume();
  return true;
}
