// Envoy's ext_authz over gRPC: envoy.service.auth.v3.Authorization/Check,
// with the client certificate in attributes.source.certificate (URL-encoded
// PEM, sent with include_peer_certificate: true). The same answer as forward
// auth, as an OkHttpResponse or a DeniedHttpResponse.
import type * as http from "node:http";
import type * as http2 from "node:http2";
import { create } from "@bufbuild/protobuf";
import { createContextKey, createContextValues, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import {
  HeaderValueOption_HeaderAppendAction,
  HeaderValueOptionSchema,
  type HeaderValueOption,
} from "../gen/envoy/config/core/v3/base_pb.js";
import {
  Authorization,
  CheckResponseSchema,
  type CheckRequest,
  type CheckResponse,
} from "../gen/envoy/service/auth/v3/external_auth_pb.js";
import { StatusCode } from "../gen/envoy/type/v3/http_status_pb.js";
import { createForwardedPeerReader, type ForwardingRequestLike } from "../proxy/forwarded-peer.js";
import type { TrustedProxyCheck } from "../proxy/trusted-proxies.js";
import { untrustedProxy, type AuthzAnswer, type AuthzDecide } from "./authz-decision.js";
import type { AuthzRequestEvent } from "./forward-auth.js";
import { createLazyNodeHandler } from "../service/lazy-node-handler.js";
import { refusalReasonHeader } from "./identity-headers.js";

/** extAuthzCheckPath is the path of Envoy's `envoy.service.auth.v3.Authorization/Check`. */
export const extAuthzCheckPath = "/envoy.service.auth.v3.Authorization/Check";

/**
 * ExtAuthzOptions is what `createExtAuthzHandler` needs.
 */
export interface ExtAuthzOptions {
  /** The decision (see `createAuthzDecide`). */
  readonly decide: AuthzDecide;
  /** Which peers are Envoy: the Check call's own address must be one. */
  readonly trust: TrustedProxyCheck;
  /** Called for every denial; errors it throws are ignored. By default, nothing. */
  readonly onDenied?: (event: AuthzRequestEvent) => void;
  /** The longest certificate read, in characters. By default, 16384. */
  readonly maxCertificateLength?: number;
}

const kAddress = createContextKey<string | undefined>(undefined, { description: "the Check call's peer address" });
// The certificate field, read as nginx's URL-encoded PEM (the same
// encoding), through the shared reader: its length limit and its cache of
// parsed certificates, so that a returning client's decision is cached too.
const certificateField = "x-envoy-source-certificate";
// The reader keys connections by socket; every Check shares this one.
const checkConnection = {};

/**
 * ExtAuthzHandler is the Node request handler of Envoy's Check, and when it
 * is ready.
 */
export interface ExtAuthzHandler {
  handle(
    req: http.IncomingMessage | http2.Http2ServerRequest,
    res: http.ServerResponse | http2.Http2ServerResponse,
  ): void;
  /** Resolves once `@connectrpc/connect-node` is loaded; rejects, naming it, when it is missing. */
  readonly ready: Promise<void>;
}

/**
 * createExtAuthzHandler returns the handler of Envoy's Check (gRPC only),
 * built on connect-node, which is imported on first use: the main entry
 * point loads without it.
 */
export function createExtAuthzHandler(options: ExtAuthzOptions): ExtAuthzHandler {
  const { decide, trust, onDenied } = options;
  // The Check's address was checked before this reader sees it.
  const readPeer = createForwardedPeerReader({
    trustedProxies: { anyAddress: true },
    formats: ["nginx"],
    nginxHeader: certificateField,
    maxHeaderLength: options.maxCertificateLength ?? 16384,
  });

  function check(request: CheckRequest, context: HandlerContext): CheckResponse | Promise<CheckResponse> {
    const address = context.values.get(kAddress);
    const http = request.attributes?.request?.http;
    const path = http?.path ?? "";
    const query = path.search(/[?#]/);
    const procedure = path.length > 1024 ? "" : query < 0 ? path : path.slice(0, query);
    const denied = (answer: AuthzAnswer, sha256: string | undefined) => {
      if (onDenied === undefined) return;
      try {
        onDenied({ protocol: "ext-authz", address, method: http?.method, procedure, answer, sha256 });
      } catch {
        // A log must not change the answer.
      }
    };
    if (!trust.byAddress(address)) {
      denied(untrustedProxy, undefined);
      return responseOf(untrustedProxy, undefined);
    }
    const certificate = request.attributes?.source?.certificate ?? "";
    const peer = readPeer({
      socket: checkConnection,
      headers: certificate === "" ? {} : { [certificateField]: certificate },
    } as ForwardingRequestLike);
    const settle = (answer: AuthzAnswer) => {
      if (answer.kind === "deny") denied(answer, peer.certificate?.sha256);
      return responseOf(answer, http?.headers);
    };
    const result = decide(peer, procedure);
    return result instanceof Promise ? result.then(settle) : settle(result);
  }

  const lazy = createLazyNodeHandler(
    {
      routes: (router: ConnectRouter) => router.service(Authorization, { check }),
      grpc: true,
      connect: false,
      grpcWeb: false,
      // A Check carries the request's headers (and its body only with
      // with_request_body): 1 MiB is plenty.
      readMaxBytes: 1024 * 1024,
      contextValues: (req) => createContextValues().set(kAddress, req.socket?.remoteAddress),
    },
    "certgate authz (Envoy's Check)",
  );
  return {
    ready: lazy.ready,
    handle: (req, res) => lazy.handler(req as http2.Http2ServerRequest, res as http2.Http2ServerResponse),
  };
}

const overwrite = HeaderValueOption_HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD;

function responseOf(answer: AuthzAnswer, requestHeaders: { [key: string]: string } | undefined): CheckResponse {
  if (answer.kind === "allow") {
    const set = new Set<string>();
    const headers: HeaderValueOption[] = [];
    for (const [key, value] of answer.headers) {
      set.add(key.toLowerCase());
      headers.push(option(key, value));
    }
    // A Certgate-* header the client sent that certgate does not set (a
    // label its certificate lacks) must not reach the upstream.
    const headersToRemove = Object.keys(requestHeaders ?? {}).filter(
      (name) => name.toLowerCase().startsWith("certgate-") && !set.has(name.toLowerCase()),
    );
    return create(CheckResponseSchema, {
      status: { code: 0 },
      httpResponse: { case: "okResponse", value: { headers, headersToRemove } },
    });
  }
  const body = `${answer.status === 401 ? "unauthenticated" : "forbidden"}: ${answer.message} (${answer.reason})\n`;
  return create(CheckResponseSchema, {
    // UNAUTHENTICATED or PERMISSION_DENIED, as the interceptors refuse.
    status: { code: answer.status === 401 ? 16 : 7, message: answer.message },
    httpResponse: {
      case: "deniedResponse",
      value: {
        status: { code: answer.status === 401 ? StatusCode.Unauthorized : StatusCode.Forbidden },
        headers: [option(refusalReasonHeader, answer.reason), option("content-type", "text/plain; charset=utf-8")],
        body,
      },
    },
  });
}

function option(key: string, value: string): HeaderValueOption {
  return create(HeaderValueOptionSchema, { header: { key, value }, appendAction: overwrite });
}
