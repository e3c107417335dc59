// A TCP proxy on 127.0.0.1 that a test can cut, hold and restore: the
// database as seen through a network that fails. `cut` resets (a clean
// outage); `hold` stops forwarding without a reset, as a partition does:
// nothing arrives either way, sockets stay open, and what was sent is
// delivered when the hold ends (TCP retransmits after a heal).
import * as net from "node:net";

export interface TcpProxy {
  readonly port: number;
  /** Ends every connection and refuses new ones (they are reset at once). */
  cut(): void;
  /** Stops forwarding on every connection, new ones included, without closing any. */
  hold(): void;
  /**
   * Forwards until a client sends bytes containing `marker` (for example a
   * statement's text), forwards those, then holds as `hold()` does.
   * Resolves once that happened.
   */
  holdAfter(marker: string): Promise<void>;
  /** Lets connections through again (ending a cut or a hold). */
  restore(): void;
  /** The local ports of the proxy's connections to the target (`client_port` in pg_stat_activity). */
  upstreamPorts(): number[];
  close(): Promise<void>;
}

interface Pair {
  readonly client: net.Socket;
  upstream?: net.Socket;
  readonly toUpstream: Buffer[];
  readonly toClient: Buffer[];
}

export async function startTcpProxy(targetPort: number, targetHost = "127.0.0.1"): Promise<TcpProxy> {
  let open = true;
  let held = false;
  let trigger: { marker: string; fired: () => void } | undefined;
  const pairs = new Set<Pair>();

  function end(pair: Pair): void {
    pair.client.destroy();
    pair.upstream?.destroy();
    pairs.delete(pair);
  }

  function connectUpstream(pair: Pair): void {
    const upstream = net.connect(targetPort, targetHost);
    pair.upstream = upstream;
    upstream.on("data", (chunk: Buffer) => {
      if (held) pair.toClient.push(chunk);
      else pair.client.write(chunk);
    });
    for (const socket of [pair.client, upstream]) {
      // During a hold a closing side tells the other nothing, as on a partition.
      socket.on("error", () => (held ? undefined : end(pair)));
      socket.on("close", () => (held ? undefined : end(pair)));
    }
    for (const chunk of pair.toUpstream.splice(0)) upstream.write(chunk);
  }

  const server = net.createServer((client) => {
    if (!open) {
      client.resetAndDestroy();
      return;
    }
    const pair: Pair = { client, toUpstream: [], toClient: [] };
    pairs.add(pair);
    client.on("error", () => undefined);
    client.on("data", (chunk: Buffer) => {
      if (held || pair.upstream === undefined) {
        pair.toUpstream.push(chunk);
        return;
      }
      pair.upstream.write(chunk);
      if (trigger !== undefined && chunk.includes(trigger.marker)) {
        const fired = trigger.fired;
        trigger = undefined;
        held = true;
        fired();
      }
    });
    if (!held) connectUpstream(pair);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));

  function destroyAll(): void {
    for (const pair of [...pairs]) end(pair);
  }

  return {
    port: (server.address() as net.AddressInfo).port,
    cut() {
      open = false;
      held = false;
      destroyAll();
    },
    hold() {
      held = true;
    },
    holdAfter(marker) {
      return new Promise((resolve) => {
        trigger = { marker, fired: resolve };
      });
    },
    restore() {
      open = true;
      held = false;
      trigger = undefined;
      for (const pair of [...pairs]) {
        if (pair.client.destroyed || pair.upstream?.destroyed === true) {
          end(pair);
          continue;
        }
        if (pair.upstream === undefined) {
          connectUpstream(pair);
          continue;
        }
        for (const chunk of pair.toUpstream.splice(0)) pair.upstream.write(chunk);
        for (const chunk of pair.toClient.splice(0)) pair.client.write(chunk);
      }
    },
    upstreamPorts() {
      return [...pairs].flatMap((p) => (p.upstream?.localPort === undefined ? [] : [p.upstream.localPort]));
    },
    close() {
      open = false;
      held = false;
      destroyAll();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
