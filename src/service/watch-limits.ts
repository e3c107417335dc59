import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { peerCertificateKey } from "../connect/context-values.js";

/**
 * OpenWatch is one watch stream counted by `WatchLimits.start`.
 */
export interface OpenWatch {
  /** Aborts when the call ends (the client left), on `abortAll`, or on `abort`. */
  readonly signal: AbortSignal;
  /** Ends the watch early (a replica cut off from its store), as `abortAll` does. */
  abort(): void;
  /** Registers clean-up to run once, when the watch is forgotten. */
  onForget(cleanup: () => void): void;
  /** Releases the watch's slot; later calls do nothing. Call it when the handler ends. */
  forget(): void;
}

/**
 * WatchLimits counts the open watch streams of one service, per connection
 * and in all, refuses new ones past the limits, and ends them all on close.
 */
export interface WatchLimits {
  /**
   * Counts a new watch of the call's connection, or throws
   * `Code.ResourceExhausted` when either limit is reached. The watch is
   * forgotten as soon as the call ends, not only when its handler does: a
   * handler paused at `yield` (the client stopped reading) whose connection
   * then goes away is never resumed, so a `finally` alone would leave its
   * slot taken for good.
   */
  start(context: HandlerContext): OpenWatch;
  /** Aborts every open watch (the service closes). */
  abortAll(): void;
  /** How many watches are open. */
  readonly open: number;
}

/**
 * createWatchLimits returns the `WatchLimits` of one service. `what` names the
 * streams in error messages (such as "watches").
 *
 * The connection is told by the `PeerCertificate` that
 * `peerCertificateContextValues` leaves in the context: it reads the peer once
 * per HTTP/2 session or HTTP/1.1 socket and hands every call on it the same
 * object. Without it, only the total limit applies.
 */
export function createWatchLimits(what: string, perConnection: number, total: number): WatchLimits {
  const counts = new WeakMap<object, number>();
  let open = 0;
  const watches = new Set<AbortController>();

  function acquire(context: HandlerContext): () => void {
    const connection = context.values.get(peerCertificateKey);
    const mine = connection === undefined ? 0 : (counts.get(connection) ?? 0);
    if (mine >= perConnection) {
      throw new ConnectError(`too many ${what} on this connection (at most ${perConnection})`, Code.ResourceExhausted);
    }
    if (open >= total) {
      throw new ConnectError(`too many ${what} on this server (at most ${total})`, Code.ResourceExhausted);
    }
    open++;
    if (connection !== undefined) counts.set(connection, mine + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      open--;
      if (connection !== undefined) {
        const left = (counts.get(connection) ?? 1) - 1;
        if (left === 0) counts.delete(connection);
        else counts.set(connection, left);
      }
    };
  }

  return {
    get open() {
      return open;
    },
    start(context) {
      const release = acquire(context);
      // One controller per watch, ended by the call or by abortAll(); not
      // AbortSignal.any, whose listeners on a shared signal pile up.
      const watch = new AbortController();
      const cleanups: (() => void)[] = [];
      let forgotten = false;
      const forget = () => {
        if (forgotten) return;
        forgotten = true;
        context.signal.removeEventListener("abort", end);
        watches.delete(watch);
        release();
        for (const cleanup of cleanups) cleanup();
      };
      const end = () => {
        watch.abort();
        forget();
      };
      context.signal.addEventListener("abort", end);
      watches.add(watch);
      if (context.signal.aborted) end();
      return {
        signal: watch.signal,
        abort: () => watch.abort(),
        onForget(cleanup) {
          if (forgotten) cleanup();
          else cleanups.push(cleanup);
        },
        forget,
      };
    },
    abortAll() {
      for (const watch of watches) watch.abort();
    },
  };
}
