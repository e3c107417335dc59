import type { Transport } from "@connectrpc/connect";

/**
 * transportsOf reads `transport` or `transports` of `createRemoteStore`:
 * exactly one of them, each a Connect transport, at least one.
 */
export function transportsOf(
  options: { transport?: Transport; transports?: readonly Transport[] } | undefined,
): Transport[] {
  const hasOne = options?.transport !== undefined;
  const hasMany = options?.transports !== undefined;
  if (!hasOne && !hasMany) {
    throw new TypeError(
      "createRemoteStore(): options.transport is required (a Connect transport to the certificate store service), or options.transports for several replicas",
    );
  }
  if (hasOne && hasMany) {
    throw new TypeError("createRemoteStore(): give options.transport or options.transports, not both");
  }
  const list = hasOne ? [options!.transport] : options!.transports;
  if (!Array.isArray(list) || list.length === 0) {
    throw new TypeError("createRemoteStore(): options.transports must be a non-empty array of Connect transports");
  }
  for (const [i, transport] of list.entries()) {
    if (transport === undefined || transport === null || typeof (transport as Transport).unary !== "function") {
      throw new TypeError(
        hasOne
          ? "createRemoteStore(): options.transport is required (a Connect transport to the certificate store service)"
          : `createRemoteStore(): options.transports[${i}] is not a Connect transport`,
      );
    }
  }
  return [...list] as Transport[];
}

/**
 * nonNegative reads a duration or size option of `createRemoteStore`,
 * throwing a `TypeError` that names it when it is not a non-negative number.
 */
export function nonNegative(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) {
    return fallback;
  }
  if (typeof value !== "number" || Number.isNaN(value) || value < 0) {
    throw new TypeError(`createRemoteStore(): ${name} must be a non-negative number, got ${String(value)}`);
  }
  return value;
}

// setTimeout fires at once for delays above 2^31 - 1 ms (about 24.8 days),
// which would turn an idle timeout into a hot reconnect loop.
const maxTimerMs = 2 ** 31 - 1;

/**
 * timerDuration reads a duration option that is used as a timer delay: like
 * `nonNegative`, and at most 2^31 - 1 ms, the longest delay Node's timers
 * keep.
 */
export function timerDuration(name: string, value: number | undefined, fallback: number): number {
  const ms = nonNegative(name, value, fallback);
  if (ms > maxTimerMs) {
    throw new TypeError(`createRemoteStore(): ${name} must be at most ${maxTimerMs} ms, got ${String(value)}`);
  }
  return ms;
}

/**
 * report calls an event hook, ignoring what it throws.
 */
export function report<E>(hook: ((event: E) => void) | undefined, event: E): void {
  if (hook === undefined) {
    return;
  }
  try {
    hook(event);
  } catch {
    // A failing hook must not change what the store does.
  }
}

/**
 * delay resolves after `ms`, or at once when `signal` aborts.
 */
export function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}
