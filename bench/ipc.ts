import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

/**
 * repoRoot is the project folder; children run from it so that `--import tsx`
 * and the relative imports of bench/ resolve as they do for `npm run bench`.
 */
export const repoRoot = fileURLToPath(new URL("..", import.meta.url));

/**
 * ChildOptions describes how to start one benchmark child process.
 */
export interface ChildOptions {
  /**
   * The CPU core to pin the child to with `taskset -c`. By default, the child
   * is not pinned (also when `pin` is false).
   */
  core?: number;
  /** Whether pinning is wanted and `taskset` works here. By default, false. */
  pin?: boolean;
  /** Extra node flags, such as `--cpu-prof`. By default, none. */
  nodeArgs?: string[];
  /** How long to wait for the child to start, in ms. By default, 30000. */
  startTimeoutMs?: number;
}

/**
 * ChildHandle drives one child process over Node's IPC channel.
 */
export interface ChildHandle {
  /** The child's process id. */
  readonly pid: number | undefined;
  /** Calls the handler named `type` in the child and resolves with its answer. */
  call<T = unknown>(type: string, payload?: unknown, timeoutMs?: number): Promise<T>;
  /**
   * Asks the child to exit (so that `--cpu-prof` can write its profile), and
   * kills it if it does not within a few seconds.
   */
  close(): Promise<void>;
}

interface Reply {
  readonly id: number;
  readonly ok: boolean;
  readonly value?: unknown;
  readonly error?: string;
}

let cachedTaskset: boolean | undefined;

/**
 * tasksetWorks tells whether `taskset` (util-linux) can pin processes here.
 */
export function tasksetWorks(): boolean {
  if (cachedTaskset === undefined) {
    const probe = spawnSync("taskset", ["-c", "0", process.execPath, "-e", "0"], { stdio: "ignore" });
    cachedTaskset = probe.status === 0;
  }
  return cachedTaskset;
}

/**
 * startChild runs `script` (a TypeScript file in bench/) in a new Node
 * process with tsx's loader, passes it `config` as JSON in argv, and resolves
 * once the child's handlers are listening.
 */
export async function startChild(script: string, config: unknown, options: ChildOptions = {}): Promise<ChildHandle> {
  const file = fileURLToPath(new URL(script, import.meta.url));
  const nodeArgs = [...(options.nodeArgs ?? []), "--import", "tsx", file, JSON.stringify(config)];
  const pinned = options.pin === true && options.core !== undefined;
  const child: ChildProcess = pinned
    ? spawn("taskset", ["-c", String(options.core), process.execPath, ...nodeArgs], {
        cwd: repoRoot,
        stdio: ["ignore", "inherit", "inherit", "ipc"],
      })
    : spawn(process.execPath, nodeArgs, { cwd: repoRoot, stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let exited: Error | undefined;
  const exitPromise = new Promise<void>((resolve) => {
    child.once("exit", (code, signal) => {
      exited = new Error(`${script} exited (${signal ?? code})`);
      for (const p of pending.values()) p.reject(exited);
      pending.clear();
      resolve();
    });
  });
  const hello = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${script} did not start within ${options.startTimeoutMs ?? 30_000} ms`)),
      options.startTimeoutMs ?? 30_000,
    );
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    void exitPromise.then(() => {
      clearTimeout(timer);
      reject(exited);
    });
    child.on("message", (message: Reply | { hello: true }) => {
      if ("hello" in message) {
        clearTimeout(timer);
        resolve();
        return;
      }
      const p = pending.get(message.id);
      if (p !== undefined) {
        pending.delete(message.id);
        if (message.ok) p.resolve(message.value);
        else p.reject(new Error(`${script}: ${message.error}`));
      }
    });
  });
  try {
    await hello;
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  }
  return {
    pid: child.pid,
    call<T>(type: string, payload?: unknown, timeoutMs = 60_000): Promise<T> {
      if (exited !== undefined) return Promise.reject(exited);
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`${script}: no answer to ${type} within ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, {
          resolve: (v) => {
            clearTimeout(timer);
            resolve(v as T);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        });
        try {
          child.send({ id, type, payload });
        } catch (error) {
          pending.delete(id);
          clearTimeout(timer);
          reject(error as Error);
        }
      });
    },
    async close() {
      if (exited !== undefined) return;
      try {
        child.send({ id: 0, type: "exit" });
      } catch {
        // The channel is gone already; the kill below ends the child.
      }
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exitPromise;
      clearTimeout(timer);
    },
  };
}

/**
 * childConfig returns the JSON config that `startChild` passed to this process.
 */
export function childConfig<T>(): T {
  const text = process.argv[2];
  if (text === undefined) {
    throw new Error("this file is started by bench/run.ts, not by hand");
  }
  return JSON.parse(text) as T;
}

/**
 * serveParent answers the parent's calls with `handlers` (child side), exits
 * on `exit` or when the parent goes away, and tells the parent it is ready.
 */
export function serveParent(handlers: Record<string, (payload: never) => unknown>): void {
  if (process.send === undefined) {
    throw new Error("this file is started by bench/run.ts, not by hand");
  }
  const send = process.send.bind(process);
  process.on("disconnect", () => process.exit(0));
  process.on("message", (message: { id: number; type: string; payload: unknown }) => {
    if (message.type === "exit") {
      // process.exit (not a signal) lets --cpu-prof write its profile.
      process.exit(0);
    }
    const handler = handlers[message.type];
    if (handler === undefined) {
      send({ id: message.id, ok: false, error: `unknown call ${message.type}` });
      return;
    }
    Promise.resolve()
      .then(() => handler(message.payload as never))
      .then(
        (value) => send({ id: message.id, ok: true, value }),
        (error: unknown) => send({ id: message.id, ok: false, error: String(error) }),
      );
  });
  send({ hello: true });
}
