/**
 * median returns the middle value (the mean of the two middle values for an
 * even count); NaN for an empty list.
 */
export function median(values: readonly number[]): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/**
 * Spread is the median of a set of ratios with their range.
 */
export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

/**
 * spread summarizes per-pair ratios: their median, min and max.
 */
export function spread(values: readonly number[]): Spread {
  const finite = values.filter((v) => Number.isFinite(v));
  return {
    median: median(finite),
    min: finite.length === 0 ? NaN : Math.min(...finite),
    max: finite.length === 0 ? NaN : Math.max(...finite),
  };
}

/**
 * percent formats a ratio as a signed change: 1.017 → "+1.7%".
 */
export function percent(ratio: number, digits = 1): string {
  if (!Number.isFinite(ratio)) return "n/a";
  const change = (ratio - 1) * 100;
  const text = change.toFixed(digits);
  return `${change >= 0 ? "+" : ""}${text === "-0.0" ? "0.0" : text}%`;
}

/**
 * percentSpread formats a spread of ratios: "+1.7% (−0.4% .. +3.0%)".
 */
export function percentSpread(s: Spread): string {
  return `${percent(s.median)} (${percent(s.min)} .. ${percent(s.max)})`;
}

/**
 * fixed formats a number with `digits` decimals, or "n/a".
 */
export function fixed(value: number, digits = 1): string {
  return Number.isFinite(value) ? value.toFixed(digits) : "n/a";
}

/**
 * table lays out rows under headers, two spaces apart: the first column and
 * those listed in `leftAligned` (indexes) left-aligned, the others (figures)
 * right-aligned.
 */
export function table(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
  leftAligned: readonly number[] = [],
): string[] {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === 0 || leftAligned.includes(i) ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(headers), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)];
}
