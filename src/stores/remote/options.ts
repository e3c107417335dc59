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
