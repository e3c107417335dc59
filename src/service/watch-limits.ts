import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { peerCertificateKey } from "../connect/context-values.js";

/**
 * WatchLimits counts the open watch streams of one service, per connection
 * and in all, and refuses new ones past the limits.
 */
export interface WatchLimits {
  /**
   * Counts a new watch of the call's connection, or throws
   * `Code.ResourceExhausted` when either limit is reached. Call the returned
   * function once the watch ends.
   */
  acquire(context: HandlerContext): () => void;
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
  return {
    get open() {
      return open;
    },
    acquire(context) {
      const connection = context.values.get(peerCertificateKey);
      const mine = connection === undefined ? 0 : (counts.get(connection) ?? 0);
      if (mine >= perConnection) {
        throw new ConnectError(
          `too many ${what} on this connection (at most ${perConnection})`,
          Code.ResourceExhausted,
        );
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
    },
  };
}
