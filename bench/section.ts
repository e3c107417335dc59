import type { BenchPki } from "./pki.js";
import type { WireProtocol } from "./load-generator.js";

/**
 * BenchOptions is what every benchmark section receives from bench/run.ts.
 * The defaults are those of a full `npm run bench`; `--quick` shortens them.
 */
export interface BenchOptions {
  /** Interleaved rounds per section. By default, 5 (`--rounds`). */
  rounds: number;
  /** Warm-up per measured run before the window opens, ms. By default, 3000 (`--warmup` seconds). */
  warmupMs: number;
  /** Measurement window per run, ms. By default, 8000 (`--duration` seconds). */
  durationMs: number;
  /** Whether `--quick` was given (a smoke run; figures are rough). By default, false. */
  quick: boolean;
  /**
   * RPC protocols a section should measure, when the user chose them with
   * `--protocols`; by default, undefined: each section's own default list.
   */
  protocols: WireProtocol[] | undefined;
  /**
   * Variants a section should measure, when the user narrowed them with
   * `--variants`; by default, undefined: each section's own default list.
   */
  variants: string[] | undefined;
  /** HTTP/2 connections of the load generator. By default, 4 (`--sessions`). */
  sessions: number;
  /** Calls in flight at all times. By default, 64 (`--streams`). */
  streams: number;
  /** Whether server and load generator are pinned to cores 0 and 1 with taskset. */
  pin: boolean;
  /**
   * How many times to measure a run again when other processes took more
   * than 10% of the server's core during its window. By default, 0
   * (`--retry-disturbed`).
   */
  retryDisturbed?: number;
  /**
   * Folder for CPU profiles of each server run's measurement window
   * (`--cpu-prof`); by default, undefined: no profiles.
   */
  cpuProfDir: string | undefined;
  /** The certificates of this run, generated at start-up and deleted at the end. */
  pki: BenchPki;
  /** Prints one progress line. */
  log(line: string): void;
}

/**
 * SectionResult is what a section hands back to bench/run.ts: text to print
 * and raw figures for `--json`.
 */
export interface SectionResult {
  /** One line saying what was measured. */
  readonly title: string;
  /** The report: tables and figures, already formatted. */
  readonly lines: string[];
  /** Things that make the figures doubtful (load generator saturated, failures). */
  readonly warnings: string[];
  /** The raw figures, written by `--json`. */
  readonly data: unknown;
}

/**
 * SectionModule is the shape of a section module in bench/: it exports `run`.
 */
export interface SectionModule {
  run(options: BenchOptions): Promise<SectionResult>;
  /** The names `--variants` may pick in this section, if it has variants. */
  readonly variants?: readonly string[];
}

/**
 * Section registers a section module under its name in bench/run.ts.
 */
export interface Section {
  /** The name given to `--only`, kebab-case. */
  readonly name: string;
  /** Loads the module lazily, so `--only` does not import what it skips. */
  readonly load: () => Promise<SectionModule>;
  /** Whether a plain `npm run bench` runs it. By default, true. */
  readonly byDefault: boolean;
}

/**
 * section builds a registration for bench/run.ts's list, in one line.
 */
export function section(
  name: string,
  load: () => Promise<SectionModule>,
  options: { byDefault?: boolean } = {},
): Section {
  return { name, load, byDefault: options.byDefault ?? true };
}
