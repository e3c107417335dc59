import { performance } from "node:perf_hooks";

/**
 * ServerWindow is what the server measured between `mark` and `report`.
 */
export interface ServerWindow {
  /** Requests that reached the Node request handler. */
  readonly requests: number;
  /** Calls that reached the Echo implementation (admitted). */
  readonly admitted: number;
  /** CPU time of the whole process (user + system), µs. */
  readonly cpuUs: number;
  /** The user-mode part of `cpuUs`, µs. */
  readonly userUs: number;
  /** The kernel-mode part of `cpuUs`, µs (syscalls: sockets, TLS records). */
  readonly systemUs: number;
  /** Wall time of the window, µs. */
  readonly wallUs: number;
  /** Event loop utilization over the window, 0..1. */
  readonly elu: number;
  /** TLS connections opened during the window. */
  readonly connections: number;
}

/**
 * ServerCounts are the counters a measured server keeps.
 */
export interface ServerCounts {
  readonly requests: number;
  readonly admitted: number;
  readonly connections: number;
}

/**
 * createWindowMeter measures a server's CPU, wall time, event loop use and
 * counters between `mark()` and `report()`.
 */
export function createWindowMeter(counts: () => ServerCounts): { mark(): void; report(): ServerWindow } {
  const snapshot = () => ({
    cpu: process.cpuUsage(),
    wall: performance.now(),
    elu: performance.eventLoopUtilization(),
    ...counts(),
  });
  let start = snapshot();
  return {
    mark() {
      start = snapshot();
    },
    report() {
      const cpu = process.cpuUsage(start.cpu);
      const now = counts();
      return {
        requests: now.requests - start.requests,
        admitted: now.admitted - start.admitted,
        cpuUs: cpu.user + cpu.system,
        userUs: cpu.user,
        systemUs: cpu.system,
        wallUs: (performance.now() - start.wall) * 1000,
        elu: performance.eventLoopUtilization(start.elu).utilization,
        connections: now.connections - start.connections,
      };
    },
  };
}
