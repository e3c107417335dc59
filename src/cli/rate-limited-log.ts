/**
 * RateLimitedLogOptions configures `createRateLimitedLog`.
 */
export interface RateLimitedLogOptions {
  /** At most this many lines per interval; 0 keeps only the summaries. */
  readonly limit: number;
  /** The interval, in milliseconds. */
  readonly intervalMs: number;
  /** What a line is about, plural, for the summary ("refusals"). */
  readonly what: string;
}

/**
 * RateLimitedLog writes lines up to a limit per interval and counts the rest.
 */
export interface RateLimitedLog {
  /** Writes `line` (with its `fields`, for JSON logs), or counts it when the interval's limit is reached. */
  log(line: string, fields?: Readonly<Record<string, unknown>>): void;
  /** Writes the summary of what was held back so far, if anything; stops the timer. */
  close(): void;
}

/**
 * createRateLimitedLog keeps a flood of similar lines (refusals of an
 * unauthenticated client, say) from flooding the log: the first `limit`
 * lines of an interval are written, the others only counted, and the
 * interval ends with one line such as "1234 more refusals in the last 10 s".
 * The interval starts with the first line after a quiet one; the timer does
 * not keep the process alive.
 */
export function createRateLimitedLog(
  write: (line: string, fields?: Readonly<Record<string, unknown>>) => void,
  options: RateLimitedLogOptions,
): RateLimitedLog {
  const { limit, intervalMs, what } = options;
  let written = 0;
  let held = 0;
  let timer: NodeJS.Timeout | undefined;

  function summary(): void {
    if (held > 0) {
      write(`${held} more ${what} in the last ${seconds(intervalMs)} s`, {
        count: held,
        intervalSeconds: Number(seconds(intervalMs)),
      });
    }
    written = 0;
    held = 0;
  }

  return {
    log(line, fields) {
      if (timer === undefined) {
        timer = setTimeout(() => {
          timer = undefined;
          summary();
        }, intervalMs);
        timer.unref();
      }
      if (written < limit) {
        written++;
        write(line, fields);
      } else {
        held++;
      }
    },
    close() {
      clearTimeout(timer);
      timer = undefined;
      summary();
    },
  };
}

function seconds(ms: number): string {
  return String(Math.round(ms / 100) / 10);
}
