import { displayText } from "../core/display-text.js";
import { CliError, ExitCode, errorMessage, usageError, type CliIo, type Command } from "./common.js";

/**
 * LogFormat is how `certgate serve` writes its log lines: `text` for people,
 * `json` for log collectors (one JSON object a line).
 */
export type LogFormat = "text" | "json";

/**
 * LogLevel is the severity of a log line: `info` for what the service does,
 * `warn` for refusals and problems it works around, `error` for what stops it.
 */
export type LogLevel = "info" | "warn" | "error";

/**
 * logFormatHelp is the `--log-format` part of `certgate serve --help`.
 */
export const logFormatHelp = `      --log-format FORMAT  text or json: with json, every line serve prints
                           (both streams) is one JSON object with time,
                           level (info, warn, error), msg and fields such
                           as url, id, procedure, reason, sha256.
                           By default, text.`;

/**
 * ServeLog writes one log line of `certgate serve`: on standard error, as
 * `certgate serve: MSG` or as a JSON object with `fields`.
 */
export interface ServeLog {
  (msg: string, fields?: Readonly<Record<string, unknown>>, level?: LogLevel): void;
  /** The same on standard output, for the lines scripts wait for (`listening on URL`). */
  out(msg: string, fields?: Readonly<Record<string, unknown>>): void;
}

const maxTextLine = 4096;
// The text lines' prefix: "certgate serve: ", "certgate authz: ".
const prefixOf = (command: string) => `certgate ${command}: `;
const jsonIos = new WeakMap<
  CliIo,
  (stream: "stdout" | "stderr", level: LogLevel, msg: string, fields?: Readonly<Record<string, unknown>>) => void
>();

/**
 * serveLogOf returns the log of a `certgate serve` run: JSON records when
 * `withLogFormat` gave the command a JSON io, else text lines.
 */
export function serveLogOf(io: CliIo, command = "serve"): ServeLog {
  const prefix = prefixOf(command);
  const record = jsonIos.get(io);
  if (record !== undefined) {
    const log = ((msg, fields, level = levelOf(msg)) => record("stderr", level, msg, fields)) as ServeLog;
    log.out = (msg, fields) => record("stdout", "info", msg, fields);
    return log;
  }
  // A value in a message (a file name, a subject) may hold a newline or an
  // escape sequence: the display rule keeps every message one honest line.
  const log = ((msg) => io.stderr(`${prefix}${displayText(msg, maxTextLine)}\n`)) as ServeLog;
  log.out = (msg) => io.stdout(`${prefix}${displayText(msg, maxTextLine)}\n`);
  return log;
}

// Lines logged without a level: refusals and problems are warnings.
function levelOf(msg: string): LogLevel {
  return /^(refused|skipped|--\S+ skipped|database unreachable|store service \S+ unreachable|\d+ more refus|took over)/.test(
    msg,
  )
    ? "warn"
    : "info";
}

/**
 * withLogFormat wraps the `serve` command so that `--log-format json` turns
 * everything it prints into JSON lines: its log (`serveLogOf`), any other
 * text it writes (the development mode guide becomes one record with the
 * text in `text`), and the error it ends with. The command's own flags must
 * include `log-format`. Process warnings become records too while it runs.
 * Mistakes on the command line before the format is known are printed as
 * text.
 */
export function withLogFormat(command: Command, now: () => number = Date.now): Command {
  return {
    name: command.name,
    help: command.help,
    options: command.options,
    async run(args, io) {
      const format = logFormatOf(command.name, args);
      if (format === "text" || args.includes("--help") || args.includes("-h")) return command.run(args, io);
      const write = (
        stream: "stdout" | "stderr",
        level: LogLevel,
        msg: string,
        fields?: Readonly<Record<string, unknown>>,
      ) => {
        // A field cannot replace the fixed keys, which come first.
        const { time: _time, level: _level, msg: _msg, ...rest } = fields ?? {};
        const line = JSON.stringify({ time: new Date(now()).toISOString(), level, msg, ...rest });
        io[stream](`${line}\n`);
      };
      const prefix = prefixOf(command.name);
      const text = (stream: "stdout" | "stderr") => (chunk: string) => {
        const lines = chunk.split("\n").filter((line) => line.trim() !== "");
        if (lines.length > 0 && lines.every((line) => line.startsWith(prefix))) {
          for (const line of lines) {
            const msg = line.slice(prefix.length);
            write(stream, stream === "stderr" ? levelOf(msg) : "info", msg);
          }
        } else if (lines.length > 0) {
          write(stream, "info", lines[0]!.trim(), { text: chunk });
        }
      };
      const jsonIo: CliIo = { ...io, stdout: text("stdout"), stderr: text("stderr") };
      jsonIos.set(jsonIo, write);
      // Process warnings (Node's and certgate's) are log lines too: while
      // the command runs, they are records instead of Node's text.
      const printers = process.listeners("warning");
      const onWarning = (warning: Error & { code?: string }) =>
        write("stderr", "warn", warning.message, {
          warning: warning.name,
          ...(warning.code === undefined ? {} : { code: warning.code }),
        });
      for (const printer of printers) process.off("warning", printer);
      process.on("warning", onWarning);
      try {
        return await command.run(args, jsonIo);
      } catch (error) {
        write(
          "stderr",
          "error",
          errorMessage(error),
          error instanceof CliError ? { exitCode: error.exitCode } : undefined,
        );
        return error instanceof CliError ? error.exitCode : ExitCode.failure;
      } finally {
        process.off("warning", onWarning);
        for (const printer of printers) process.on("warning", printer);
      }
    },
  };
}

// Reads --log-format before the command parses its flags, so that its
// errors are JSON too.
function logFormatOf(command: string, args: readonly string[]): LogFormat {
  let format: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") break;
    if (arg === "--log-format") format = args[++i];
    else if (arg.startsWith("--log-format=")) format = arg.slice("--log-format=".length);
  }
  if (format === undefined || format === "text" || format === "json") return format ?? "text";
  throw usageError(command, `--log-format ${format}: expected text or json`);
}
