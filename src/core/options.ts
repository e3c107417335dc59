// Option readers shared by every factory, so that a clock or a size option
// means the same everywhere.

/**
 * clockOf turns a `clock` option (epoch milliseconds or a Date) into a
 * function returning epoch milliseconds: `Date.now` itself when there is
 * none, so that the warm path pays no wrapper. A clock answering something
 * that is not a time throws, which the callers turn into a refusal (fail
 * closed) rather than comparing with NaN.
 */
export function clockOf(clock: (() => number | Date) | undefined): () => number {
  if (clock === undefined) {
    return Date.now;
  }
  return () => {
    const t = +clock();
    if (Number.isNaN(t)) {
      throw new Error("certgate: options.clock returned an invalid time");
    }
    return t;
  };
}

/**
 * positiveInteger reads an integer option of at least `min` (by default, 1),
 * or `fallback` when it is undefined; otherwise it throws a `TypeError`
 * naming the option: `${name} must be an integer of at least ${min}`.
 */
export function positiveInteger(name: string, value: unknown, fallback: number, min = 1): number {
  if (value === undefined) {
    return fallback;
  }
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
    throw new TypeError(`${name} must be an integer of at least ${min}, got ${String(value)}`);
  }
  return value;
}
