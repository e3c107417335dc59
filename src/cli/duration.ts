/**
 * durationHelp describes the durations `parseDuration` reads, for help texts.
 */
export const durationHelp = "a number and a unit: s, m, h, d or w (30d, 12h, 90m, 1d12h)";

const units: Readonly<Record<string, number>> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

// About a thousand years: far beyond any certificate, far within a Date.
const maxMs = 1000 * 365 * 86_400_000;

/**
 * parseDuration reads a command-line duration such as `30d`, `12h`, `90m` or
 * `1d12h` (a day is 24 hours) into milliseconds, or returns undefined for
 * anything else: no unit, a negative or fractional number, an unknown unit,
 * more than about a thousand years.
 */
export function parseDuration(text: string): number | undefined {
  if (!/^(?:\d{1,9}[smhdw])+$/.test(text)) {
    return undefined;
  }
  let ms = 0;
  for (const [, count, unit] of text.matchAll(/(\d+)([smhdw])/g)) {
    ms += Number(count) * (units[unit as string] ?? Number.NaN);
  }
  return Number.isSafeInteger(ms) && ms <= maxMs ? ms : undefined;
}
