import type { IncomingHttpHeaders } from "node:http";

// The content types of Connect unary and streaming, gRPC and gRPC-Web that
// Connect answers; anything else goes to Connect's own path.
const contentTypes = new Set([
  "application/json",
  "application/proto",
  "application/connect+json",
  "application/connect+proto",
  "application/grpc",
  "application/grpc+proto",
  "application/grpc+json",
  "application/grpc-web",
  "application/grpc-web+proto",
  "application/grpc-web+json",
]);
// Request headers that change Connect's answer (its compression), in the key.
const shapeHeaders = [
  "accept-encoding",
  "content-encoding",
  "connect-accept-encoding",
  "connect-content-encoding",
  "grpc-accept-encoding",
  "grpc-encoding",
];
const maxShapeHeaderLength = 128;

/**
 * isConnectContentType tells whether a request's content type is one of
 * Connect unary and streaming, gRPC or gRPC-Web, exactly as Connect's
 * clients send it.
 */
export function isConnectContentType(contentType: string | undefined): boolean {
  return contentType !== undefined && contentTypes.has(contentType);
}

/**
 * requestShapeOf returns the key of what Connect's answer to a POST depends
 * on besides the call's decision: the path, the content type (protocol and
 * format) and the compression headers. Undefined when the content type or
 * one of those headers is missing in a form a key cannot hold (repeated, or
 * over 128 characters).
 */
export function requestShapeOf(req: { readonly headers: IncomingHttpHeaders }, path: string): string | undefined {
  const headers = req.headers;
  const contentType = headers["content-type"];
  if (contentType === undefined || contentType.length > maxShapeHeaderLength) return undefined;
  let key = `${path}\n${contentType}`;
  for (const name of shapeHeaders) {
    const value = headers[name];
    if (value === undefined) {
      key += "\n";
    } else if (typeof value === "string" && value.length <= maxShapeHeaderLength) {
      key += `\n${value}`;
    } else {
      return undefined;
    }
  }
  return key;
}
