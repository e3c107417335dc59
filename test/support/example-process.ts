// Runs an example (examples/*.ts) or the demo as a real process, the way
// `npx tsx examples/NAME.ts` does, in a folder of the test's choosing.
import { spawn, type ChildProcess } from "node:child_process";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { waitFor } from "./harness.js";
import { watchChild } from "./watched-child.js";

const repo = fileURLToPath(new URL("../..", import.meta.url));
const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CERTGATE_")));

/** A running example process. */
export interface ExampleProcess {
  child: ChildProcess;
  /** Everything it printed so far. */
  output(): { stdout: string; stderr: string };
  /** Whether it is still running. */
  running(): boolean;
  /** Ends it (SIGTERM, then SIGKILL) and waits for its exit. */
  stop(): Promise<void>;
}

/** What `startExample` runs. */
export interface ExampleOptions {
  /** The working folder: the examples create `.certgate/demo` in it. */
  cwd: string;
  env?: Record<string, string>;
  args?: readonly string[];
  /** A stdout line that says it is ready. By default, /listening on/. */
  ready?: RegExp;
}

// examples/NAME.ts through tsx with the repository's tsconfig, output piped.
function spawnExample(name: string, options: Omit<ExampleOptions, "ready">): ChildProcess {
  return spawn(process.execPath, ["--import", tsx, join(repo, "examples", `${name}.ts`), ...(options.args ?? [])], {
    cwd: options.cwd,
    env: { ...baseEnv, TSX_TSCONFIG_PATH: join(repo, "tsconfig.json"), ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/**
 * startExample runs `examples/NAME.ts` through tsx with the repository's
 * tsconfig (so `certgate` is the source, not dist/), and waits for its ready
 * line on stdout.
 */
export async function startExample(name: string, options: ExampleOptions): Promise<ExampleProcess> {
  const child = spawnExample(name, options);
  const watched = watchChild(child);
  const ready = options.ready ?? /listening on/;
  const example: ExampleProcess = {
    child,
    output: () => {
      const { stdout, stderr } = watched.output();
      return { stdout, stderr };
    },
    running: () => !watched.exited(),
    async stop() {
      if (!watched.exited()) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await watched.exit;
      clearTimeout(timer);
    },
  };
  try {
    await waitFor(
      () => watched.exited() || ready.test(watched.output().stdout),
      `examples/${name}.ts to start`,
      60_000,
    );
  } catch (error) {
    await example.stop();
    throw error;
  }
  if (watched.exited()) {
    const { stdout, stderr } = watched.output();
    throw new Error(`examples/${name}.ts exited:\n${stdout}\n${stderr}`);
  }
  return example;
}

/** The first port printed after `scheme://host:`, such as https://localhost:PORT. */
export function printedPort(stdout: string, scheme = "https"): number {
  const match = new RegExp(`${scheme}://[^\\s:/]+:(\\d+)`).exec(stdout);
  if (match === null) throw new Error(`no ${scheme} address in:\n${stdout}`);
  return Number(match[1]);
}

/** runExample runs `examples/NAME.ts` to its end, or until `until` matches its output. */
export async function runExample(
  name: string,
  options: Omit<ExampleOptions, "ready"> & { until?: RegExp },
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawnExample(name, options);
  let stdout = "";
  let stderr = "";
  return new Promise((resolve, reject) => {
    const check = () => {
      if (options.until?.test(stdout + stderr)) child.kill("SIGTERM");
    };
    child.stdout!.on("data", (d: Buffer) => {
      stdout += d.toString();
      check();
    });
    child.stderr!.on("data", (d: Buffer) => {
      stderr += d.toString();
      check();
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}
