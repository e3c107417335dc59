import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";

/**
 * createWindowProfiler profiles a benchmark server's measurement window
 * (from `start` to `stop`) into `path`, so that start-up and warm-up (and
 * tsx's loader thread) stay out of the figures. Without a path, both do
 * nothing.
 */
export function createWindowProfiler(path: string | undefined): { start(): Promise<void>; stop(): Promise<void> } {
  const profiler = path === undefined ? undefined : new Session();
  function post(method: string, params?: object): Promise<unknown> {
    return new Promise((resolve, reject) => {
      profiler?.post(method, params ?? {}, (error, result) => (error === null ? resolve(result) : reject(error)));
    });
  }
  return {
    async start() {
      if (profiler === undefined) return;
      profiler.connect();
      await post("Profiler.enable");
      await post("Profiler.setSamplingInterval", { interval: 250 });
      await post("Profiler.start");
    },
    async stop() {
      if (profiler === undefined || path === undefined) return;
      const { profile } = (await post("Profiler.stop")) as { profile: unknown };
      writeFileSync(path, JSON.stringify(profile));
      profiler.disconnect();
    },
  };
}
