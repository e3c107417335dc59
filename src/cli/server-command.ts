import type { RateLimitedLogOptions } from "./rate-limited-log.js";
import { usageError } from "./common.js";
import { countFlag, secondsFlag } from "./listen-flags.js";

// What the long-running commands (serve, authz) share: their refusal log
// and TLS file flags, and their wait for SIGINT or SIGTERM.

/** refusalLogFlags are the flags of `refusalLogOf`, with --log-format (see `withLogFormat`). */
export const refusalLogFlags = {
  "refusal-log-limit": { type: "string" },
  "refusal-log-interval": { type: "string" },
  "log-format": { type: "string" },
} as const;

/**
 * refusalLogOf reads --refusal-log-limit (by default, 20 lines) and
 * --refusal-log-interval (by default, 10 seconds) for `createRateLimitedLog`.
 */
export function refusalLogOf(
  command: string,
  values: { readonly "refusal-log-limit"?: string; readonly "refusal-log-interval"?: string },
): RateLimitedLogOptions {
  return {
    limit: countFlag(command, "refusal-log-limit", values["refusal-log-limit"], 20, 0),
    intervalMs: secondsFlag(command, "refusal-log-interval", values["refusal-log-interval"], 10_000, false),
    what: "refusals",
  };
}

/** tlsFilesOf reads --tls-cert and --tls-key, which come together or not at all. */
export function tlsFilesOf(
  command: string,
  values: { readonly "tls-cert"?: string; readonly "tls-key"?: string },
): { readonly tlsCert: string | undefined; readonly tlsKey: string | undefined } {
  const tlsCert = values["tls-cert"];
  const tlsKey = values["tls-key"];
  if ((tlsCert === undefined) !== (tlsKey === undefined)) {
    throw usageError(command, tlsCert === undefined ? "--tls-key needs --tls-cert" : "--tls-cert needs --tls-key");
  }
  return { tlsCert, tlsKey };
}

/** stopped resolves once `signal` aborts (SIGINT or SIGTERM), at once if it has. */
export function stopped(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}
