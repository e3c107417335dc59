// What a child process of a test wrote and whether it has exited, for the
// helpers that start one (certgate serve, an example, nginx or Caddy).
import type { ChildProcess } from "node:child_process";

/** WatchedChild is a child process started with stdout and stderr piped, followed. */
export interface WatchedChild {
  /** What it wrote so far; `all` holds both streams in the order they came. */
  output(): { stdout: string; stderr: string; all: string };
  /** Whether it has exited. */
  exited(): boolean;
  /** Resolves once it exits, with its exit code or the signal's name. */
  readonly exit: Promise<number | string | null>;
}

/** watchChild follows `child` from now on: its output and its exit. */
export function watchChild(child: ChildProcess): WatchedChild {
  let stdout = "";
  let stderr = "";
  let all = "";
  let exited = false;
  const exit = new Promise<number | string | null>((resolve) =>
    child.on("exit", (code, signal) => {
      exited = true;
      resolve(code ?? signal);
    }),
  );
  child.stdout!.on("data", (d: Buffer) => {
    stdout += d.toString();
    all += d.toString();
  });
  child.stderr!.on("data", (d: Buffer) => {
    stderr += d.toString();
    all += d.toString();
  });
  return { output: () => ({ stdout, stderr, all }), exited: () => exited, exit };
}
