import { describe, expect, it } from "vitest";
import { createConnectTransport } from "@connectrpc/connect-node";
import { createRemoteStore } from "../src/index.js";

// A transport that is never used successfully: these tests only create and
// close the store.
const transport = createConnectTransport({ baseUrl: "https://127.0.0.1:1", httpVersion: "2" });

describe("createRemoteStore() options", () => {
  it("admits the longest timer delay Node keeps (2^31 - 1 ms)", async () => {
    const store = createRemoteStore({ transport, idleTimeoutMs: 2 ** 31 - 1, syncTimeoutMs: 1 });
    await store.close();
    const lookup = createRemoteStore({ transport, mode: "lookup", requestTimeoutMs: 2 ** 31 - 1 });
    await lookup.close();
  });

  it.each(["idleTimeoutMs", "syncTimeoutMs", "reconnectDelayMs", "maxReconnectDelayMs"])(
    "refuses %s above 2^31 - 1 ms, naming it (Node would fire the timer at once)",
    (name) => {
      expect(() => createRemoteStore({ transport, [name]: 2 ** 31 })).toThrow(name);
    },
  );

  it("refuses requestTimeoutMs above 2^31 - 1 ms in lookup mode, naming it", () => {
    expect(() => createRemoteStore({ transport, mode: "lookup", requestTimeoutMs: 2 ** 31 })).toThrow("requestTimeoutMs");
  });

  it("takes exactly one of transport and transports, naming the mistake", async () => {
    expect(() => createRemoteStore({ transport, transports: [transport] })).toThrow("not both");
    expect(() => createRemoteStore({ transports: [] })).toThrow("non-empty array");
    expect(() => createRemoteStore({ transports: [transport, {} as never] })).toThrow("options.transports[1] is not a Connect transport");
    expect(() => createRemoteStore({} as never)).toThrow("options.transport is required");
    const store = createRemoteStore({ transports: [transport, transport], syncTimeoutMs: 1 });
    await store.close();
  });
});
