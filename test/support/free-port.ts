// A free loopback port, for servers that cannot listen on port 0 and tell
// which port they got (nginx, Caddy, openssl ocsp).
import { createServer, type AddressInfo } from "node:net";

/** freePort binds port 0 on loopback and gives back the port, free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
