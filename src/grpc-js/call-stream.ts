// How certgate reaches the HTTP/2 stream (and so the session and its TLS
// socket) of a grpc-js server call. grpc-js 1.14 gives interceptors no public
// way: `getAuthContext()` is empty unless Node verified the chain, and reads
// the certificate again on every call. The stream is the `stream` field of
// the innermost call, `BaseServerInterceptingCall`, reached through the
// `nextCall` field of the interceptors' calls in between. Both are checked
// once, when the interceptor is created; if a grpc-js release renames them,
// certgate refuses to start rather than admit. grpc-js is imported as a
// namespace: a named import of a class an older release lacks (such as
// ServerInterceptingCall before 1.10) would fail when the module loads, with
// Node's error instead of certgate's.
import { EventEmitter } from "node:events";
import { createRequire } from "node:module";
import type { ServerHttp2Stream } from "node:http2";
import * as grpcJs from "@grpc/grpc-js";
import type { ServerInterceptingCallInterface } from "@grpc/grpc-js";

// Interceptors wrap one another; this bounds the walk through them.
const maxDepth = 64;

/**
 * streamOf returns the HTTP/2 stream of a grpc-js server call, or undefined
 * when the call does not lead to one. Another interceptor's call may have a
 * `stream` field of its own: only an HTTP/2 server stream ends the walk.
 */
export function streamOf(call: ServerInterceptingCallInterface): ServerHttp2Stream | undefined {
  let c = call as { stream?: unknown; nextCall?: unknown } | undefined;
  for (let depth = 0; depth < maxDepth && typeof c === "object" && c !== null; depth++) {
    const stream = c.stream;
    if (isServerHttp2Stream(stream)) return stream;
    c = c.nextCall as typeof c;
  }
  return undefined;
}

// node:http2 does not export the ServerHttp2Stream class: its own methods
// tell it from other streams.
function isServerHttp2Stream(value: unknown): value is ServerHttp2Stream {
  const s = value as Partial<ServerHttp2Stream> | null | undefined;
  return (
    typeof s === "object" &&
    s !== null &&
    typeof s.respond === "function" &&
    typeof s.pushStream === "function" &&
    "session" in s
  );
}

let checked = false;

/**
 * assertCallShape checks, once per process, that the installed grpc-js
 * keeps the fields `streamOf` reads, by building its calls around a stand-in
 * stream. It throws an error naming the problem otherwise.
 */
export function assertCallShape(): void {
  if (checked) return;
  let ok = false;
  let why = "";
  const require = createRequire(import.meta.url);
  try {
    const ServerInterceptingCall = (grpcJs as Partial<typeof grpcJs>).ServerInterceptingCall;
    if (typeof ServerInterceptingCall !== "function") throw new Error("it has no ServerInterceptingCall");
    // The internal module is found next to grpc-js's own entry point.
    const entry = require.resolve("@grpc/grpc-js");
    const internal = require(entry.replace(/index\.js$/, "server-interceptors.js")) as {
      BaseServerInterceptingCall?: new (...args: unknown[]) => ServerInterceptingCallInterface;
    };
    const Base = internal.BaseServerInterceptingCall;
    if (typeof Base !== "function") {
      why = "BaseServerInterceptingCall is gone";
    } else {
      const stream = Object.assign(new EventEmitter(), {
        pause() {},
        resume() {},
        respond() {},
        pushStream() {},
        session: undefined,
      });
      const handler = {
        path: "/certgate.Probe/Probe",
        type: "unary",
        serialize: () => Buffer.alloc(0),
        deserialize: () => ({}),
      };
      const base = new Base(stream, {}, null, handler, {});
      const outer = new ServerInterceptingCall(new ServerInterceptingCall(base));
      ok = streamOf(outer) === (stream as unknown) && streamOf(base) === (stream as unknown);
      if (!ok) why = "the call no longer leads to its HTTP/2 stream";
    }
  } catch (error) {
    why = (error as Error).message;
  }
  if (!ok) {
    throw new Error(
      `certgate: @grpc/grpc-js ${installedVersion(require)} is not supported: this version hides the HTTP/2 stream of a server call (${why}); certgate/grpc-js supports the layout of @grpc/grpc-js 1.14 and cannot check client certificates with this one`,
    );
  }
  checked = true;
}

function installedVersion(require: NodeJS.Require): string {
  try {
    const version = (require("@grpc/grpc-js/package.json") as { version?: unknown }).version;
    return typeof version === "string" ? version : "(unknown version)";
  } catch {
    return "(unknown version)";
  }
}
