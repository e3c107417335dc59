// npm run demo (examples/demo.ts) as a new user meets it: where it listens,
// and a busy port.
import { connect, createServer, type Server } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { printedPort, runExample, startExample, type ExampleProcess } from "../support/example-process.js";

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "certgate-demo-"));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
  });
}

describe("npm run demo", () => {
  describe("listening", () => {
    let demo: ExampleProcess;
    beforeAll(async () => {
      demo = await startExample("demo", { cwd: tmp, env: { PORT: "0" } });
    });
    afterAll(async () => {
      await demo?.stop();
    });

    it("prints localhost and the loopback address it is bound to", () => {
      expect(demo.output().stdout).toMatch(
        /^certgate demo listening on https:\/\/localhost:\d+ \(bound to (127\.0\.0\.1|::1); PORT and HOST change it\)$/m,
      );
    });

    it("is reached on localhost", async () => {
      expect(await reachable("localhost", printedPort(demo.output().stdout))).toBe(true);
    });

    it("is not reached on the machine's other addresses", async () => {
      const others = Object.values(networkInterfaces())
        .flat()
        .filter((a) => a !== undefined && !a.internal && a.family === "IPv4")
        .map((a) => a!.address);
      for (const address of others) {
        expect(await reachable(address, printedPort(demo.output().stdout)), address).toBe(false);
      }
    });
  });

  describe("on a busy port", () => {
    let busy: Server;
    let port: number;
    beforeAll(async () => {
      busy = createServer();
      await new Promise<void>((resolve) => busy.listen(0, "localhost", resolve));
      port = (busy.address() as { port: number }).port;
    });
    afterAll(async () => {
      await new Promise((resolve) => busy.close(resolve));
    });

    it("exits with one line naming the port and how to change it, no stack trace", async () => {
      const result = await runExample("demo", { cwd: tmp, env: { PORT: String(port) }, until: /listening on/ });
      expect(result.code).toBe(1);
      expect(result.stderr.trim()).toBe(
        `certgate demo: cannot listen on localhost:${port}: address already in use; choose another port with PORT=8443 npm run demo`,
      );
    });
  });
});
