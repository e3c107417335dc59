import type { AddressInfo, Server } from "node:net";

/** ListenAddress is where a server listens, and the URL to give its clients. */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
  readonly url: string;
}

/**
 * listenOn starts `server` listening on `host`:`port` (port 0 picks a free
 * one) and resolves with its address and a `scheme`:// URL (an IPv6 host in
 * brackets); it rejects with the server's error, such as EADDRINUSE.
 */
export function listenOn(server: Server, port: number, host: string, scheme: "http" | "https"): Promise<ListenAddress> {
  return new Promise((resolve, reject) => {
    const fail = (error: Error) => reject(error);
    server.once("error", fail);
    server.listen(port, host, () => {
      server.off("error", fail);
      const address = server.address() as AddressInfo;
      const shown = address.family === "IPv6" ? `[${address.address}]` : address.address;
      resolve({ host: address.address, port: address.port, url: `${scheme}://${shown}:${address.port}` });
    });
  });
}
