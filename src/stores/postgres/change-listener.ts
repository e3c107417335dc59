import type { Notification, Pool, PoolClient } from "pg";
import { reconnectDelay } from "../../core/reconnect-delay.js";

/**
 * ChangeListenerOptions configures `createChangeListener`.
 */
export interface ChangeListenerOptions {
  readonly pool: Pool;
  /** The channel, quoted for SQL. */
  readonly quotedChannel: string;
  /** Called with the revision of every notification. */
  onNotify(revision: number): void;
  /** Called each time LISTEN is in place (again): time to catch up. */
  onListening(): void;
  readonly reconnectDelayMs: number;
  readonly maxReconnectDelayMs: number;
}

/**
 * ChangeListener keeps one connection of the pool LISTENing.
 */
export interface ChangeListener {
  /** Whether LISTEN is in place now. */
  readonly listening: boolean;
  /** Gives the connection up and opens another, when the store doubts it still hears. */
  restart(): void;
  close(): void;
}

/**
 * createChangeListener holds a connection of `pool` that LISTENs on the
 * store's channel. When the connection breaks (a restart, a terminated
 * backend, a network cut) it connects again with exponential backoff and
 * jitter; notifications sent meanwhile are lost, which is why the store also
 * reads the change log after every (re)connection and on a timer.
 */
export function createChangeListener(options: ChangeListenerOptions): ChangeListener {
  let client: PoolClient | undefined;
  let closed = false;
  let attempt = 0;
  let timer: NodeJS.Timeout | undefined;

  function retry(): void {
    if (closed) return;
    const wait = reconnectDelay(attempt, options.reconnectDelayMs, options.maxReconnectDelayMs);
    attempt = Math.min(attempt + 1, 30);
    timer = setTimeout(connect, wait);
    timer.unref();
  }

  function drop(held: PoolClient, error: unknown): void {
    if (client !== held) return;
    client = undefined;
    held.release(error instanceof Error ? error : new Error(String(error)));
    retry();
  }

  async function connect(): Promise<void> {
    if (closed) return;
    let held: PoolClient | undefined;
    try {
      held = await options.pool.connect();
      const mine = held;
      mine.on("error", (error) => drop(mine, error));
      mine.on("end", () => drop(mine, new Error("the listening connection ended")));
      mine.on("notification", (message: Notification) => {
        const revision = Number(message.payload);
        if (Number.isSafeInteger(revision)) options.onNotify(revision);
      });
      client = mine;
      await mine.query(`LISTEN ${options.quotedChannel}`);
      if (closed) {
        drop(mine, new Error("closed"));
        return;
      }
      attempt = 0;
      options.onListening();
    } catch (error) {
      if (held !== undefined && client === held) {
        drop(held, error);
      } else {
        retry();
      }
    }
  }

  void connect();

  return {
    get listening() {
      return client !== undefined;
    },
    restart() {
      const held = client;
      if (held !== undefined) drop(held, new Error("the store lost the database: listening again"));
    },
    close() {
      closed = true;
      clearTimeout(timer);
      const held = client;
      client = undefined;
      held?.release(true);
    },
  };
}
