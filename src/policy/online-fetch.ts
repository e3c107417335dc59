// The one way certgate fetches revocation data (OCSP responses, CRLs from
// distribution points): http(s) only, a deadline for the whole exchange,
// a byte limit enforced while the body streams in, and a redirect limit.

/**
 * RevocationFetch is the `fetch` hook of `validateRevocation`: the WHATWG
 * `fetch` signature, so `globalThis.fetch`, undici's `fetch` with a proxy
 * dispatcher, or a test double fit.
 */
export type RevocationFetch = (url: string, init: RequestInit) => Promise<Response>;

/**
 * FetchFailureReason says why a fetch gave nothing usable, for logs and metrics.
 */
export type FetchFailureReason =
  | "timeout"
  | "unreachable"
  | "http_status"
  | "too_large"
  | "too_many_redirects"
  | "unsupported_url";

/**
 * FetchResult is the body of a successful (200) answer, or why there is none.
 */
export type FetchResult =
  | { readonly kind: "ok"; readonly bytes: Uint8Array }
  | { readonly kind: "failed"; readonly reason: FetchFailureReason; readonly why: string };

/**
 * BoundedFetchOptions limits one `boundedFetch`.
 */
export interface BoundedFetchOptions {
  readonly fetch: RevocationFetch;
  /** The deadline for the whole exchange, redirects and body included, ms. */
  readonly timeoutMs: number;
  /** The largest body accepted, bytes. */
  readonly maxBytes: number;
  /** How many redirects to follow. By default, 3. */
  readonly maxRedirects?: number;
}

/**
 * isFetchableUrl tells whether certgate fetches from a URL: http and https
 * only (no LDAP, no file).
 */
export function isFetchableUrl(url: string): boolean {
  try {
    const { protocol } = new URL(url);
    return protocol === "http:" || protocol === "https:";
  } catch {
    return false;
  }
}

/**
 * boundedFetch fetches `url` (a GET, or a POST of `body` with
 * `contentType`). It never rejects: every failure is a `failed` result.
 */
export async function boundedFetch(
  url: string,
  request: { readonly body?: Uint8Array; readonly contentType?: string; readonly accept: string },
  options: BoundedFetchOptions,
): Promise<FetchResult> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  // A hook that ignores the signal still cannot hold the caller past the deadline.
  const deadline = new Promise<FetchResult>((resolve) => {
    timer = setTimeout(() => {
      controller.abort();
      resolve({ kind: "failed", reason: "timeout", why: `no answer from ${url} within ${options.timeoutMs} ms` });
    }, options.timeoutMs);
    timer.unref?.();
  });
  try {
    return await Promise.race([exchange(url, request, options, controller.signal), deadline]);
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}

async function exchange(
  first: string,
  request: { readonly body?: Uint8Array; readonly contentType?: string; readonly accept: string },
  options: BoundedFetchOptions,
  signal: AbortSignal,
): Promise<FetchResult> {
  const maxRedirects = options.maxRedirects ?? 3;
  let url = first;
  let retried = false;
  for (let hops = 0; ; hops++) {
    if (!isFetchableUrl(url)) return { kind: "failed", reason: "unsupported_url", why: `not an http(s) URL: ${url}` };
    let response: Response;
    try {
      const headers: Record<string, string> = { accept: request.accept };
      if (request.contentType !== undefined) headers["content-type"] = request.contentType;
      response = await options.fetch(url, {
        method: request.body === undefined ? "GET" : "POST",
        headers,
        ...(request.body !== undefined && { body: request.body }),
        redirect: "manual",
        signal,
      });
    } catch (error) {
      if (signal.aborted) return { kind: "failed", reason: "timeout", why: `no answer from ${url}` };
      // A kept-alive connection the server closed meanwhile fails the
      // request at once: try once more on a new one (OCSP and CRL requests
      // are idempotent), within the same deadline.
      if (!retried) {
        retried = true;
        hops--;
        continue;
      }
      return { kind: "failed", reason: "unreachable", why: `${url}: ${messageOf(error)}` };
    }
    const location = response.headers.get("location");
    if (response.status >= 300 && response.status < 400 && response.status !== 304 && location !== null) {
      await response.body?.cancel().catch(() => undefined);
      if (hops >= maxRedirects) {
        return {
          kind: "failed",
          reason: "too_many_redirects",
          why: `more than ${maxRedirects} redirects from ${first}`,
        };
      }
      try {
        url = new URL(location, url).href;
      } catch {
        return { kind: "failed", reason: "unsupported_url", why: `${url} redirects to a bad URL` };
      }
      continue;
    }
    if (response.status !== 200) {
      await response.body?.cancel().catch(() => undefined);
      return { kind: "failed", reason: "http_status", why: `${url} answered HTTP ${response.status}` };
    }
    return readBody(response, url, options.maxBytes, signal);
  }
}

async function readBody(response: Response, url: string, maxBytes: number, signal: AbortSignal): Promise<FetchResult> {
  const tooLarge: FetchResult = {
    kind: "failed",
    reason: "too_large",
    why: `${url} answered more than ${maxBytes} bytes`,
  };
  const declared = Number(response.headers.get("content-length") ?? Number.NaN);
  if (declared > maxBytes) {
    await response.body?.cancel().catch(() => undefined);
    return tooLarge;
  }
  if (response.body === null) return { kind: "ok", bytes: new Uint8Array(0) };
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > maxBytes) {
        await reader.cancel().catch(() => undefined);
        return tooLarge;
      }
      chunks.push(value);
    }
  } catch (error) {
    if (signal.aborted) return { kind: "failed", reason: "timeout", why: `${url} did not finish its answer in time` };
    return { kind: "failed", reason: "unreachable", why: `${url}: ${messageOf(error)}` };
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  return { kind: "ok", bytes };
}

function messageOf(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error)?.message ?? String(error);
}
