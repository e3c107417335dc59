import { readFileSync } from "node:fs";
import { CliError, ExitCode, errorMessage, usageError, type CliIo, type Command } from "./common.js";

/**
 * CommandEntry is one `certgate` command as the tool lists it; its module is
 * loaded only when it runs, so that a quick command does not pay for the
 * service's modules.
 */
export interface CommandEntry {
  /** The command's name, such as `upload`. */
  readonly name: string;
  /** One line for `certgate --help`. */
  readonly summary: string;
  /** Imports the command's module. */
  load(): Promise<Command>;
}

/**
 * commands lists the `certgate` commands in the order `--help` shows them.
 */
export const commands: readonly CommandEntry[] = [
  {
    name: "serve",
    summary: "Run the certificate store service",
    load: async () => (await import("./serve.js")).serveCommand,
  },
  {
    name: "authz",
    summary: "Answer nginx, Caddy, Traefik and Envoy external authorization",
    load: async () => (await import("./authz.js")).authzCommand,
  },
  {
    name: "migrate",
    summary: "Copy a folder store into PostgreSQL",
    load: async () => (await import("./migrate.js")).migrateCommand,
  },
  {
    name: "upload",
    summary: "Upload certificates to the store (admin)",
    load: async () => (await import("./upload.js")).uploadCommand,
  },
  {
    name: "import",
    summary: "Load many certificates in batches, resumable (admin)",
    load: async () => (await import("./import.js")).importCommand,
  },
  {
    name: "list",
    summary: "List the stored certificates (reader)",
    load: async () => (await import("./list.js")).listCommand,
  },
  {
    name: "get",
    summary: "Show one stored certificate (reader)",
    load: async () => (await import("./get.js")).getCommand,
  },
  {
    name: "delete",
    summary: "Delete a stored certificate (admin)",
    load: async () => (await import("./delete.js")).deleteCommand,
  },
  {
    name: "verify",
    summary: "Ask the store whether it admits a certificate (reader)",
    load: async () => (await import("./verify.js")).verifyCommand,
  },
  {
    name: "audit",
    summary: "Show who created, deleted or was refused (reader)",
    load: async () => (await import("./audit.js")).auditCommand,
  },
  {
    name: "thumbprint",
    summary: "Print the thumbprints, subject and expiry of certificates in files",
    load: async () => (await import("./thumbprint.js")).thumbprintCommand,
  },
  {
    name: "completion",
    summary: "Print a bash, zsh or fish completion script",
    load: async () => (await import("./completion.js")).completionCommand,
  },
];

function toolHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length)) + 2;
  return `Usage: certgate COMMAND [options]

Runs and uses a certgate certificate store service: one place where
operators upload and revoke the client certificates that API servers admit.

Commands:
${commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`).join("\n")}

Options:
  -h, --help     Show this help (certgate COMMAND --help for a command's)
      --version  Print the version

Environment:
  CERTGATE_STORE, CERTGATE_CERT, CERTGATE_KEY, CERTGATE_CA
                 Defaults for --store, --cert, --key and --ca
  CERTGATE_DATABASE_URL
                 Default for --database (serve, migrate)
  CERTGATE_DEBUG=1
                 Print the stack trace of unexpected errors

Exit status: 0 on success, 1 on failure (the reason is one line on standard
error), 2 for a wrong command line, 3 when certgate verify is not admitted.
`;
}

/**
 * version returns the version of the certgate package.
 */
export function version(): string {
  // src/cli/main.ts and dist/cli/main.js both sit two folders below package.json.
  const text = readFileSync(new URL("../../package.json", import.meta.url), "utf8");
  return (JSON.parse(text) as { version: string }).version;
}

/**
 * runCli runs `certgate` with the arguments after the program name and
 * returns the exit code. Failures are reported on `io.stderr` as one line
 * starting with `certgate:`, never as a stack trace.
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    const [first, ...rest] = argv;
    if (first === undefined) {
      io.stderr(toolHelp());
      return ExitCode.usage;
    }
    if (first === "--help" || first === "-h") {
      io.stdout(toolHelp());
      return ExitCode.ok;
    }
    if (first === "--version") {
      io.stdout(`certgate ${version()}\n`);
      return ExitCode.ok;
    }
    if (first === "help") {
      const name = rest[0];
      if (name === undefined) {
        io.stdout(toolHelp());
        return ExitCode.ok;
      }
      return await (await findCommand(name).load()).run(["--help"], io);
    }
    if (first.startsWith("-")) {
      throw usageError("", `unknown option ${first}; options go after the command`);
    }
    return await (await findCommand(first).load()).run(rest, io);
  } catch (error) {
    if (error instanceof CliError) {
      io.stderr(`certgate: ${error.message}\n`);
      return error.exitCode;
    }
    io.stderr(`certgate: ${errorMessage(error)}\n`);
    if (io.env.CERTGATE_DEBUG !== undefined && io.env.CERTGATE_DEBUG !== "" && error instanceof Error) {
      io.stderr(`${error.stack ?? ""}\n`);
    }
    return ExitCode.failure;
  }
}

function findCommand(name: string): CommandEntry {
  const command = commands.find((c) => c.name === name);
  if (command === undefined) {
    throw usageError("", `unknown command ${name}`);
  }
  return command;
}
