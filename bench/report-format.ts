// Small readers and number formats shared by the rows of `--report`.
import type { VariantSummary } from "./load-run.js";
import { fixed, median } from "./stats.js";

/** record reads a section's data as an object; anything else is empty. */
export const record = (value: unknown): Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};

/** num reads a number; anything else is NaN, which formats as "n/a". */
export const num = (value: unknown): number => (typeof value === "number" ? value : Number.NaN);

/** nums reads a list of numbers. */
export const nums = (value: unknown): number[] => (Array.isArray(value) ? value.map(num) : []);

/** variant finds one variant's summary in a list of them. */
export const variant = (value: unknown, name: string): VariantSummary | undefined =>
  (Array.isArray(value) ? (value as VariantSummary[]) : []).find((s) => s.variant === name);

/** mid is the median of a list of numbers read from data. */
export const mid = (value: unknown): number => median(nums(value));

/** missed marks a figure whose target was not met; nothing when it was (or is unknown). */
export const missed = (ok: boolean | undefined): string => (ok === false ? " (**missed**)" : "");

/** ns formats nanoseconds without decimals. */
export const ns = (value: number): string => fixed(value, 0);

/** share formats a 0..1 share as a percentage with two decimals. */
export const share = (value: number): string => (Number.isFinite(value) ? `${(value * 100).toFixed(2)}%` : "n/a");

/** sig3 formats a number with about three significant digits: 1.77, 81.5, 179. */
export function sig3(value: number): string {
  if (!Number.isFinite(value)) return "n/a";
  const size = Math.abs(value);
  return fixed(value, size < 10 ? 2 : size < 100 ? 1 : 0);
}

/** duration formats milliseconds: "1.77 ms" below a second, "4.8 s" from there. */
export const duration = (ms: number): string => (Math.abs(ms) < 1000 ? `${sig3(ms)} ms` : `${fixed(ms / 1000, 1)} s`);

/** range formats the smallest and largest of a list: "2.2–2.9", or one figure when they are equal. */
export function range(values: readonly number[], format: (v: number) => string): string {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return "n/a";
  const [low, high] = [format(Math.min(...finite)), format(Math.max(...finite))];
  return low === high ? low : `${low}–${high}`;
}

/** count formats a certificate count briefly: 1k, 100k, 1M. */
export function count(value: number): string {
  if (value >= 1_000_000 && value % 1_000_000 === 0) return `${value / 1_000_000}M`;
  if (value >= 1000 && value % 1000 === 0) return `${value / 1000}k`;
  return String(value);
}

/** SectionData reads the data of one section of the run; undefined when it did not run or failed. */
export type SectionData = (section: string) => unknown;

/**
 * ReportRowSpec is one row of the summary table: its wording, the sections
 * measuring it and how their data reads as the figure.
 */
export interface ReportRowSpec {
  readonly measured: string;
  readonly target: string;
  readonly sections: readonly string[];
  /** The parts of the figure, one per section that ran (a missing section gives none). */
  figure(data: SectionData): string[];
}

/** from reads a part of a figure from one section: none when that section did not run or failed. */
export function from(data: SectionData, section: string, read: (d: unknown) => string): string[] {
  const d = data(section);
  return d === undefined ? [] : [read(d)];
}
