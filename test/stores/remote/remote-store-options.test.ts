import { beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { createDevCa, issueDevCertificate } from "../../../src/dev-certificates.js";
import { createRemoteStore, parseCertificate, type Certificate } from "../../../src/index.js";

// A transport to a port where nothing listens: these tests create and close
// stores, and see their look-ups fail closed.
const transport = createConnectTransport({ baseUrl: "https://127.0.0.1:1", httpVersion: "2" });
let certificate: Certificate;
beforeAll(async () => {
  certificate = parseCertificate((await issueDevCertificate(await createDevCa(), { commonName: "alice" })).der);
});

describe("createRemoteStore() options", () => {
  it("admits the longest timer delay Node keeps (2^31 - 1 ms), without firing it at once", async () => {
    const store = createRemoteStore({ transport, idleTimeoutMs: 2 ** 31 - 1, syncTimeoutMs: 1 });
    expect(store.mode).toBe("mirror");
    expect(store.state).toBe("connecting");
    await store.close();
    expect(store.state).toBe("closed");
    expect(await store.lookup(certificate, new AbortController().signal)).toMatchObject({ kind: "error" });

    // Nothing listens on port 1: the call fails as unreachable. Had the
    // timeout overflowed, Node would have fired it at once: deadline exceeded.
    const lookup = createRemoteStore({ transport, mode: "lookup", requestTimeoutMs: 2 ** 31 - 1 });
    try {
      const verdict = await lookup.lookup(certificate, new AbortController().signal);
      expect(verdict.kind).toBe("error");
      const code = verdict.kind === "error" ? ConnectError.from(verdict.error).code : undefined;
      expect(code).toBe(Code.Unavailable);
    } finally {
      await lookup.close();
    }
    expect(lookup.state).toBe("closed");
  });

  it.each(["idleTimeoutMs", "syncTimeoutMs", "reconnectDelayMs", "maxReconnectDelayMs"])(
    "refuses %s above 2^31 - 1 ms, naming it (Node would fire the timer at once)",
    (name) => {
      expect(() => createRemoteStore({ transport, [name]: 2 ** 31 })).toThrow(name);
    },
  );

  it("refuses requestTimeoutMs above 2^31 - 1 ms in lookup mode, naming it", () => {
    expect(() => createRemoteStore({ transport, mode: "lookup", requestTimeoutMs: 2 ** 31 })).toThrow(
      "requestTimeoutMs",
    );
  });

  it("takes exactly one of transport and transports, naming the mistake", async () => {
    expect(() => createRemoteStore({ transport, transports: [transport] })).toThrow("not both");
    expect(() => createRemoteStore({ transports: [] })).toThrow("non-empty array");
    expect(() => createRemoteStore({ transports: [transport, {} as never] })).toThrow(
      "options.transports[1] is not a Connect transport",
    );
    expect(() => createRemoteStore({} as never)).toThrow("options.transport is required");
    const store = createRemoteStore({ transports: [transport, transport], syncTimeoutMs: 1 });
    await store.close();
  });
});
