import { isIP } from "node:net";
import { usageError } from "./common.js";

/**
 * Listen is a parsed `--listen HOST:PORT`.
 */
export interface Listen {
  /** The host to listen on: a name, an IP address, or `::` for every interface. */
  readonly host: string;
  /** The port; 0 picks a free one. */
  readonly port: number;
  /** What kind of host was given. */
  readonly kind: "name" | "ip" | "wildcard";
  /** The flag's text, for messages. */
  readonly text: string;
}

/**
 * parseListen reads `HOST:PORT`, `[IPv6]:PORT` or `:PORT` (every interface)
 * for `command`'s `--listen`.
 */
export function parseListen(text: string, command = "serve"): Listen {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  if (match === null || port > 65535) {
    throw usageError(command, `--listen ${text}: expected HOST:PORT, such as localhost:8444 or 0.0.0.0:8444`);
  }
  const host = match[1] ?? match[2] ?? "";
  if (match[1] !== undefined && isIP(host) !== 6) {
    throw usageError(command, `--listen ${text}: ${host} is not an IPv6 address`);
  }
  if (host === "" || host === "0.0.0.0" || host === "::") {
    return { host: host === "" ? "::" : host, port, kind: "wildcard", text };
  }
  return { host, port, kind: isIP(host) === 0 ? "name" : "ip", text };
}

/**
 * countFlag reads a whole number flag of at least `min`; `fallback` when
 * it is not given.
 */
export function countFlag(
  command: string,
  flag: string,
  text: string | undefined,
  fallback: number,
  min: number,
): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < min) {
    throw usageError(command, `--${flag} ${text}: expected a whole number of at least ${min}`);
  }
  return value;
}

/**
 * secondsFlag reads a flag in seconds (fractions allowed) as milliseconds;
 * 0 only when `zeroOff` (0 then means never).
 */
export function secondsFlag(
  command: string,
  flag: string,
  text: string | undefined,
  fallback: number,
  zeroOff: boolean,
): number {
  if (text === undefined) return fallback;
  const seconds = Number(text);
  const ms = Math.round(seconds * 1000);
  if (text.trim() === "" || !Number.isFinite(seconds) || ms < 0 || (ms === 0 && !zeroOff) || ms > 2_147_483_647) {
    throw usageError(
      command,
      `--${flag} ${text}: expected a number of seconds${zeroOff ? " (0 for never)" : " above 0"}`,
    );
  }
  return ms;
}
