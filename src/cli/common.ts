import { parseArgs, type ParseArgsConfig } from "node:util";
import { displayText } from "../core/display-text.js";

/**
 * CliIo is what a command reads and writes besides its arguments, so that
 * the commands run the same in the `certgate` process and in tests.
 */
export interface CliIo {
  /** Writes to standard output. */
  readonly stdout: (text: string) => void;
  /** Writes to standard error. */
  readonly stderr: (text: string) => void;
  /** The environment, for `CERTGATE_*` variables. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The working directory that relative paths are resolved against. */
  readonly cwd: string;
  /** Aborted to stop a long-running command (`serve`): SIGINT, SIGTERM. */
  readonly signal: AbortSignal;
  /**
   * How to run certgate in the commands it prints, such as
   * `npx tsx src/cli.ts` in a clone of the repository. By default, `certgate`.
   */
  readonly program?: string;
  /**
   * Asks the person at the terminal for a secret, without echoing it;
   * resolves undefined when there is no terminal. By default, there is none.
   */
  readonly readSecret?: (prompt: string) => Promise<string | undefined>;
}

/**
 * ExitCode lists the exit codes of `certgate`.
 */
export const ExitCode = {
  /** The command did what was asked. */
  ok: 0,
  /** The command failed: the reason is the last line on standard error. */
  failure: 1,
  /** The command line was wrong: an unknown flag, a missing argument. */
  usage: 2,
  /** `certgate verify`: the store does not admit the certificate. */
  notAdmitted: 3,
} as const;

/**
 * CliError is a failure that `certgate` reports as one line on standard
 * error, without a stack trace.
 */
export class CliError extends Error {
  override name = "CliError";
  /** The process exit code. */
  readonly exitCode: number;
  constructor(message: string, exitCode: number = ExitCode.failure, options?: { cause?: unknown }) {
    super(message, options);
    this.exitCode = exitCode;
  }
}

/**
 * usageError returns a `CliError` for a wrong command line, pointing at the
 * command's help.
 */
export function usageError(command: string, message: string): CliError {
  const help = command === "" ? "certgate --help" : `certgate ${command} --help`;
  return new CliError(`${message} (see ${help})`, ExitCode.usage);
}

/**
 * CommandSpec describes one command: its name, help text and flags.
 */
export interface CommandSpec<O extends ParseArgsConfig["options"]> {
  /** The command's name, such as `upload`. */
  readonly name: string;
  /** The full text of `certgate NAME --help`. */
  readonly help: string;
  /** The flags, as `node:util` `parseArgs` takes them (`--help` is added). */
  readonly options: O;
}

/**
 * CommandOption is one flag of a command, as `parseArgs` takes it.
 */
export interface CommandOption {
  readonly type: "string" | "boolean";
  readonly short?: string;
  readonly multiple?: boolean;
}

/**
 * Command is a runnable command: its spec and its entry point, which returns
 * the exit code.
 */
export interface Command {
  /** The command's name, such as `upload`. */
  readonly name: string;
  /** The full text of `certgate NAME --help`. */
  readonly help: string;
  /** Its flags as `parseArgs` reads them, `--help` included: shell completion lists them. */
  readonly options: Readonly<Record<string, CommandOption>>;
  /** Runs the command with the arguments after its name; resolves with the exit code. */
  run(args: readonly string[], io: CliIo): Promise<number>;
}

type Parsed<O extends ParseArgsConfig["options"]> = ReturnType<
  typeof parseArgs<{ options: O; allowPositionals: true; strict: true }>
>;

/**
 * defineCommand builds a `Command` whose `run` parses the flags strictly
 * (unknown flags and missing values are usage errors), answers `--help`, and
 * then calls `action`.
 */
export function defineCommand<O extends NonNullable<ParseArgsConfig["options"]>>(
  spec: CommandSpec<O>,
  action: (parsed: Parsed<O>, io: CliIo) => Promise<number>,
): Command {
  const options = { ...spec.options, help: { type: "boolean", short: "h" } } as const;
  return {
    name: spec.name,
    help: spec.help,
    options,
    async run(args, io) {
      let parsed: Parsed<O>;
      try {
        parsed = parseArgs({
          args: joinDashValues(args, spec.options),
          options,
          allowPositionals: true,
          strict: true,
        }) as Parsed<O>;
      } catch (error) {
        throw usageError(spec.name, parseArgsMessage(error));
      }
      if ((parsed.values as { help?: boolean }).help === true) {
        io.stdout(spec.help.endsWith("\n") ? spec.help : `${spec.help}\n`);
        return ExitCode.ok;
      }
      return action(parsed, io);
    },
  };
}

/**
 * joinDashValues lets a value that starts with a dash and a digit, such as
 * `--expiring-within -5d`, reach the command as the flag's value (written
 * `--expiring-within=-5d`), so that the command says what is wrong with it;
 * parseArgs would call it ambiguous. No flag of certgate is named `-DIGIT`.
 */
export function joinDashValues(args: readonly string[], options: NonNullable<ParseArgsConfig["options"]>): string[] {
  const takesValue = (arg: string): boolean => {
    if (arg.startsWith("--")) return options[arg.slice(2)]?.type === "string";
    if (/^-[^-]$/.test(arg)) return Object.values(options).some((o) => o.short === arg[1] && o.type === "string");
    return false;
  };
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const next = args[i + 1];
    if (arg === "--") {
      out.push(...args.slice(i));
      break;
    }
    if (next !== undefined && /^-[\d.]/.test(next) && takesValue(arg)) {
      out.push(arg.startsWith("--") ? `${arg}=${next}` : `${arg}${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

// parseArgs messages are long and mention "strict: false"; keep the gist.
function parseArgsMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const ambiguous = /Option '(?:-\w, )?(--[\w-]+)(?: <value>)?' argument is ambiguous/.exec(message);
  if (ambiguous !== null) {
    return `option ${ambiguous[1]} needs a value; write ${ambiguous[1]}=VALUE for a value that starts with "-"`;
  }
  const unknown = /Unknown option '([^']+)'/.exec(message);
  if (unknown !== null) {
    return `unknown option ${unknown[1]}`;
  }
  const missing = /Option '(?:-\w, )?(--[\w-]+)(?: <value>)?' argument missing/.exec(message);
  if (missing !== null) {
    return `option ${missing[1]} needs a value`;
  }
  const positional = /Unexpected argument '([^']+)'/.exec(message);
  if (positional !== null) {
    return `unexpected argument ${positional[1]}`;
  }
  return message.split("\n")[0] ?? message;
}

/**
 * expectPositionals checks the count of positional arguments.
 */
export function expectPositionals(
  command: string,
  positionals: readonly string[],
  what: string,
  count: { min: number; max?: number },
): void {
  if (positionals.length < count.min) {
    throw usageError(command, `missing ${what}`);
  }
  if (count.max !== undefined && positionals.length > count.max) {
    throw usageError(command, `unexpected argument ${positionals[count.max]}`);
  }
}

/**
 * oneLine turns a distinguished name as Node prints it (one `key=value` per
 * line) into the one-line form people read, `CN=alice, O=Contoso`, shown by
 * the display rule (`displayText`): escaped, at most `maxLength` characters.
 */
export function oneLine(dn: string, maxLength?: number): string {
  return displayText(
    dn
      .split("\n")
      .filter((part) => part.length > 0)
      .join(", "),
    maxLength,
  );
}

/**
 * errorMessage returns the message of an unknown thrown value.
 */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
}

/**
 * json renders a value for `--json` output: indented, one trailing newline.
 */
export function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}
