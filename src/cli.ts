#!/usr/bin/env node
// The `certgate` command. Everything but process wiring is in ./cli/main.ts.
import { basename, relative } from "node:path";
import { createInterface } from "node:readline";
import { runCli } from "./cli/main.js";

const argv = process.argv.slice(2);
const controller = new AbortController();
const longRunning = argv[0] === "serve" || argv[0] === "authz";

// Only a long-running command stops gracefully on SIGINT/SIGTERM; a second
// signal ends it at once. Other commands keep Node's default: end at once.
if (longRunning) {
  const stop = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) {
      process.exit(signal === "SIGINT" ? 130 : 143);
    }
    controller.abort(signal);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

// A closed pipe (`certgate list | head`) is not an error worth a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") {
      process.exit(process.exitCode ?? 0);
    }
    throw error;
  });
}

const code = await runCli(argv, {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
  env: process.env,
  cwd: process.cwd(),
  signal: controller.signal,
  program: program(process.argv[1]),
  readSecret,
});
process.exitCode = code;
if (longRunning) {
  // Everything was closed; should a library still hold a handle, do not
  // hang after a graceful stop.
  setTimeout(() => process.exit(code), 5000).unref();
}

// How the user can run certgate again, for the commands that serve prints:
// the source file through tsx in a clone, node on dist/ in a clone, and
// plain "certgate" when installed (npm links the bin).
function program(script: string | undefined): string {
  if (script === undefined || basename(script) === "certgate") {
    return "certgate";
  }
  const path = relative(process.cwd(), script);
  const shown = path.startsWith("..") || path === "" ? script : path;
  if (script.endsWith(".ts")) {
    return `npx tsx ${shown}`;
  }
  return script.includes("node_modules") ? "npx certgate" : `node ${shown}`;
}

// Reads a line from the terminal without echoing it (a PKCS#12 password);
// undefined when standard input or error is not a terminal.
function readSecret(prompt: string): Promise<string | undefined> {
  if (!process.stdin.isTTY || !process.stderr.isTTY) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    // The interface first: it puts the terminal in raw mode, so that a
    // password typed as soon as the prompt shows is not echoed by the
    // terminal itself.
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    // Echo nothing of what is typed.
    (rl as unknown as { _writeToOutput: (text: string) => void })._writeToOutput = () => {};
    process.stderr.write(prompt);
    rl.once("line", (line) => {
      // Before close(), whose "close" event is emitted at once.
      resolve(line);
      rl.close();
      process.stderr.write("\n");
    });
    rl.once("close", () => resolve(undefined));
  });
}
