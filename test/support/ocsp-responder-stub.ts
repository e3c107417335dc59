// An OCSP responder in process, as a `fetch` hook: it reads the CertID and
// nonce of each request and answers `good` (or what `statusOf` says),
// signed by the CA's key (ECDSA with SHA-256). Fast enough for benchmarks
// of thousands of certificates; the tests use `openssl ocsp` instead.
import { createHash, createPrivateKey, sign } from "node:crypto";
import { childrenOf, readTlv } from "../../src/core/der.js";
import { encodeDer } from "../../src/policy/ocsp-request.js";

/** An in-process responder. */
export interface OcspResponderStub {
  /** The `validateRevocation.fetch` hook. */
  fetch(url: string, init: RequestInit): Promise<Response>;
  /** Requests answered. */
  readonly requests: number;
  /** The most requests in flight at once since the start or `resetPeak`. */
  readonly peakInFlight: number;
  resetPeak(): void;
}

const ecdsaSha256 = new Uint8Array([0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]);
const basicOid = new Uint8Array([0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01]);

function generalizedTime(ms: number): Uint8Array {
  const iso = new Date(ms).toISOString(); // 2026-12-07T21:00:00.000Z
  return encodeDer(0x18, Buffer.from(`${iso.slice(0, 19).replace(/[-:T]/g, "")}Z`, "latin1"));
}

/**
 * createOcspResponderStub answers for the CA of `caCertDer` / `caKeyPem`;
 * responses are valid for `lifetimeMs` from `now()`, and each takes
 * `delayMs` (by default, 0).
 */
export function createOcspResponderStub(options: {
  caCertDer: Uint8Array;
  caKeyPem: string;
  now: () => number;
  lifetimeMs: number;
  delayMs?: number;
  statusOf?: (serialHex: string) => "good" | "revoked" | "unknown";
}): OcspResponderStub {
  const key = createPrivateKey(options.caKeyPem);
  const ca = options.caCertDer;
  const spki = childrenOf(ca, childrenOf(ca, readTlv(ca, 0))[0]!).filter((f) => f.tag === 0x30)[4]!;
  const bits = childrenOf(ca, spki)[1]!;
  const keyHash = createHash("sha1")
    .update(ca.subarray(bits.contentStart + 1, bits.end))
    .digest();
  let requests = 0;
  let inFlight = 0;
  let peakInFlight = 0;
  return {
    get requests() {
      return requests;
    },
    get peakInFlight() {
      return peakInFlight;
    },
    resetPeak() {
      peakInFlight = inFlight;
    },
    async fetch(_url, init) {
      inFlight++;
      peakInFlight = Math.max(peakInFlight, inFlight);
      try {
        if (options.delayMs) await new Promise((r) => setTimeout(r, options.delayMs));
        const der = init.body as Uint8Array;
        const tbs = childrenOf(der, readTlv(der, 0))[0]!;
        const [list, extensions] = childrenOf(der, tbs);
        const certId = childrenOf(der, childrenOf(der, list!)[0]!)[0]!;
        const serial = childrenOf(der, certId)[3]!;
        const serialHex = Buffer.from(der.subarray(serial.contentStart, serial.end)).toString("hex");
        let nonceExtension: Uint8Array[] = [];
        if (extensions !== undefined) {
          // Echo the request's extensions (the nonce) as they came.
          const inner = readTlv(der, extensions.contentStart, extensions.end);
          nonceExtension = [encodeDer(0xa1, der.subarray(inner.start, inner.end))];
        }
        const status = options.statusOf?.(serialHex) ?? "good";
        const statusDer =
          status === "good"
            ? new Uint8Array([0x80, 0x00])
            : status === "unknown"
              ? new Uint8Array([0x82, 0x00])
              : encodeDer(0xa1, generalizedTime(options.now() - 60_000));
        const t = options.now();
        const single = encodeDer(
          0x30,
          der.subarray(certId.start, certId.end),
          statusDer,
          generalizedTime(t - 1000),
          encodeDer(0xa0, generalizedTime(t + options.lifetimeMs)),
        );
        const data = encodeDer(
          0x30,
          encodeDer(0xa2, encodeDer(0x04, keyHash)),
          generalizedTime(t),
          encodeDer(0x30, single),
          ...nonceExtension,
        );
        const signature = sign("sha256", data, { key, dsaEncoding: "der" });
        const basic = encodeDer(0x30, data, ecdsaSha256, encodeDer(0x03, new Uint8Array([0]), signature));
        const body = encodeDer(
          0x30,
          new Uint8Array([0x0a, 0x01, 0x00]),
          encodeDer(0xa0, encodeDer(0x30, basicOid, encodeDer(0x04, basic))),
        );
        requests++;
        return new Response(body, { status: 200, headers: { "content-type": "application/ocsp-response" } });
      } finally {
        inFlight--;
      }
    },
  };
}
