import { Code } from "@connectrpc/connect";
import { beforeAll, describe, expect, it } from "vitest";
import { parseCertificate } from "../../src/core/certificate.js";
import { createDecisionCore, type ClientCertOptions } from "../../src/decision/decision.js";
import type { Decision, DecisionEvent } from "../../src/core/decision-report.js";
import type { IssuedCertificate } from "../../src/dev-certificates.js";
import type { PeerCertificate } from "../../src/core/peer-certificate.js";
import { createCertificateSet, type CertificateSet } from "../../src/policy/certificate-set.js";
import { createCrlSet, type CrlSet } from "../../src/policy/crl-set.js";
import {
  createChangeNotifier,
  type CertificateStore,
  type StoredCertificate,
  type StoreVerdict,
} from "../../src/core/store.js";
import { createThumbprintStore } from "../../src/stores/thumbprint-store.js";
import { outcomeOf } from "../support/decisions.js";
import { createCrl, createPolicyPki, issue, serialOf, type PolicyPki } from "../support/policy-pki.js";

// The decision core in process, option by option: each option on and off.
let pki: PolicyPki;
let expired: IssuedCertificate;
let notYetValid: IssuedCertificate;
let expiringSoon: IssuedCertificate;
let ca: CertificateSet;
let crls: Record<string, string>;
const peers = new Map<IssuedCertificate, PeerCertificate>();

beforeAll(async () => {
  pki = await createPolicyPki();
  expired = await issue(pki.root, {
    commonName: "expired",
    usages: ["client"],
    notBefore: new Date(Date.now() - 10 * 86400_000),
    notAfter: new Date(Date.now() - 60_000),
  });
  notYetValid = await issue(pki.root, {
    commonName: "later",
    usages: ["client"],
    notBefore: new Date(Date.now() + 60_000),
  });
  expiringSoon = await issue(pki.root, {
    commonName: "soon",
    usages: ["client"],
    notAfter: new Date(Date.now() + 10 * 86400_000),
  });
  ca = createCertificateSet([pki.root.cert, pki.int1.cert, pki.int2.cert]);
  crls = {
    good: (await Promise.all([createCrl(pki.root), createCrl(pki.int1), createCrl(pki.int2)])).join(""),
    revokedLeaf: (
      await Promise.all([
        createCrl(pki.root),
        createCrl(pki.int1),
        createCrl(pki.int2, { revoked: [serialOf(pki.leaf3)] }),
      ])
    ).join(""),
    stale: (
      await Promise.all([
        createCrl(pki.root, {
          thisUpdate: new Date(Date.now() - 2 * 86400_000),
          nextUpdate: new Date(Date.now() - 86400_000),
        }),
        createCrl(pki.int1),
        createCrl(pki.int2),
      ])
    ).join(""),
  };
});

// One PeerCertificate per certificate, as the adapter makes one per connection.
function peer(issued: IssuedCertificate, authorized = false): PeerCertificate {
  const key = authorized ? ({ ...issued } as IssuedCertificate) : issued;
  let p = peers.get(key);
  if (p === undefined) {
    p = { certificate: parseCertificate(issued.cert), authorized, authorizationError: undefined, encrypted: true };
    peers.set(key, p);
  }
  return p;
}

// A store that admits every certificate (so that the policy alone decides).
const everyone: CertificateStore = {
  revision: 1,
  lookup: async (c) => ({ kind: "admitted", entry: { id: c.sha256 } }),
  onChange: () => () => undefined,
  close: async () => undefined,
};

async function decide(
  options: Partial<ClientCertOptions>,
  who: PeerCertificate,
  procedure?: string,
): Promise<Decision> {
  const core = createDecisionCore({ store: everyone, ...options } as ClientCertOptions);
  return await core.decide(who, procedure);
}

describe("createDecisionCore() policy options", () => {
  const table: [string, () => Partial<ClientCertOptions>, () => PeerCertificate, string, string][] = [
    ["validateNotAfter", () => ({ validateNotAfter: true }), () => peer(expired), "expired", "admitted"],
    ["validateNotBefore", () => ({ validateNotBefore: true }), () => peer(notYetValid), "not_yet_valid", "admitted"],
    ['validateTrust: "tls"', () => ({ validateTrust: "tls" }), () => peer(pki.leaf1, false), "untrusted", "admitted"],
    [
      "validateTrust: { ca } (another CA)",
      () => ({ validateTrust: { ca } }),
      () => peer(pki.stranger),
      "untrusted",
      "admitted",
    ],
    [
      "validateTrust: { ca } (missing intermediate)",
      () => ({ validateTrust: { ca: [pki.root.cert, pki.int2.cert] } }),
      () => peer(pki.leaf3),
      "untrusted",
      "admitted",
    ],
    [
      "validateRevocation (revoked leaf)",
      () => ({ validateTrust: { ca }, validateRevocation: { crls: [crls.revokedLeaf as string] } }),
      () => peer(pki.leaf3),
      "revoked",
      "admitted",
    ],
    [
      "validateRevocation (stale CRL)",
      () => ({ validateTrust: { ca }, validateRevocation: { crls: [crls.stale as string] } }),
      () => peer(pki.leaf3),
      "stale_crl",
      "admitted",
    ],
    [
      "requireClientAuthUsage",
      () => ({ requireClientAuthUsage: true }),
      () => peer(pki.serverOnly),
      "wrong_usage",
      "admitted",
    ],
    ["identities", () => ({ identities: [{ commonName: "bob" }] }), () => peer(pki.leaf1), "not_allowed", "admitted"],
  ];
  it.each(table)("refuses with %s on", async (_, on, who, refusal) => {
    expect(outcomeOf(await decide(on(), who()))).toBe(refusal);
  });
  it.each(table)("admits with %s off", async (_, on, who, __, admitted) => {
    const off: Partial<ClientCertOptions> = Object.fromEntries(
      Object.keys(on()).map((k) => [
        k,
        k.startsWith("validateNot") || k === "requireClientAuthUsage" ? false : undefined,
      ]),
    );
    expect(outcomeOf(await decide(off, who()))).toBe(admitted);
  });
  it("admits trusted chains of depth 1 to 3 with their revocation checked", async () => {
    for (const leaf of [pki.leaf1, pki.leaf2, pki.leaf3]) {
      expect(
        outcomeOf(
          await decide({ validateTrust: { ca }, validateRevocation: { crls: [crls.good as string] } }, peer(leaf)),
        ),
      ).toBe("admitted");
    }
  });
  it("admits with a clock skew allowance, refuses without", async () => {
    expect(outcomeOf(await decide({ clockSkewMs: 5 * 60_000 }, peer(expired)))).toBe("admitted");
    expect(outcomeOf(await decide({ clockSkewMs: 0 }, peer(expired)))).toBe("expired");
  });
  it("admits a stale CRL with allowStale, refuses a revoked leaf whatever allowStale says", async () => {
    expect(
      outcomeOf(
        await decide(
          { validateTrust: { ca }, validateRevocation: { crls: [crls.stale as string], allowStale: true } },
          peer(pki.leaf3),
        ),
      ),
    ).toBe("admitted");
    expect(
      outcomeOf(
        await decide(
          { validateTrust: { ca }, validateRevocation: { crls: [crls.revokedLeaf as string], allowStale: true } },
          peer(pki.leaf3),
        ),
      ),
    ).toBe("revoked");
  });
  it("admits by trust alone without a store, refuses what the chain does not reach", async () => {
    const core = createDecisionCore({ validateTrust: { ca } });
    const admitted = await core.decide(peer(pki.leaf2));
    expect(admitted.kind === "admitted" && admitted.entry.id).toBe(parseCertificate(pki.root.cert).sha256);
    expect(outcomeOf(await core.decide(peer(pki.stranger)))).toBe("untrusted");
  });
  it("refuses a known certificate that identities do not match with PermissionDenied, an unknown one with Unauthenticated", async () => {
    const store = createThumbprintStore(parseCertificate(pki.leaf1.cert).sha256);
    const denied = await decide({ store, identities: [{ commonName: "bob" }] }, peer(pki.leaf1));
    expect(denied.kind === "refused" && denied.code).toBe(Code.PermissionDenied);
    const unknown = await decide({ store, identities: [{ commonName: "bob" }] }, peer(pki.leaf2));
    expect(unknown.kind === "refused" && [unknown.reason, unknown.code ?? Code.Unauthenticated]).toEqual([
      "not_allowed",
      Code.Unauthenticated,
    ]);
  });
  it("admits issuerCertificateId through the store's get, refuses another id", async () => {
    const root = parseCertificate(pki.root.cert);
    const stored: StoredCertificate = {
      id: "root-ca",
      der: root.der,
      sha1: root.sha1,
      sha256: root.sha256,
      labels: {},
      createTime: new Date(),
    };
    const store = { ...everyone, get: async (id: string) => (id === "root-ca" ? stored : undefined) };
    expect(outcomeOf(await decide({ store, identities: [{ issuerCertificateId: "root-ca" }] }, peer(pki.leaf1)))).toBe(
      "admitted",
    );
    expect(outcomeOf(await decide({ store, identities: [{ issuerCertificateId: "root-ca" }] }, peer(pki.leaf2)))).toBe(
      "not_allowed",
    );
  });
  it("refuses with store_unavailable when the issuer look-up fails, and asks again next time", async () => {
    let calls = 0;
    const core = createDecisionCore({
      store: everyone,
      identities: [{ issuerCertificateId: "root-ca" }],
      issuerCertificates: async () => {
        calls++;
        throw new Error("down");
      },
    });
    const who = peer(pki.leaf1);
    expect(outcomeOf(await core.decide(who))).toBe("store_unavailable");
    expect(outcomeOf(await core.decide(who))).toBe("store_unavailable");
    expect(calls).toBe(2);
  });
});

describe("createDecisionCore() caching and invalidation", () => {
  function mutableCrls(initial: string): CrlSet & { set(pem: string): void } {
    const notifier = createChangeNotifier();
    let current = createCrlSet([initial]);
    return {
      get revision() {
        return notifier.revision;
      },
      get crls() {
        return current.crls;
      },
      onChange: notifier.onChange,
      close: async () => undefined,
      set(pem) {
        current = createCrlSet([pem]);
        notifier.changed();
      },
    };
  }
  it("admits from the cache on a warm connection, then refuses once the CRL set changes", async () => {
    let lookups = 0;
    const store: CertificateStore = {
      ...everyone,
      lookup: async (c): Promise<StoreVerdict> => {
        lookups++;
        return { kind: "admitted", entry: { id: c.sha256 } };
      },
    };
    const set = mutableCrls(crls.good as string);
    const core = createDecisionCore({ store, validateTrust: { ca }, validateRevocation: { crls: set } });
    const who = peer(pki.leaf3);
    expect(outcomeOf(await core.decide(who))).toBe("admitted");
    const warm = core.decide(who);
    expect(warm instanceof Promise).toBe(false);
    expect(lookups).toBe(1);
    set.set(crls.revokedLeaf as string);
    expect(outcomeOf(await core.decide(who))).toBe("revoked");
  });
  it("refuses once the CA set drops the root, on the same connection", async () => {
    const notifier = createChangeNotifier();
    let list = [parseCertificate(pki.root.cert)];
    const set: CertificateSet = {
      get revision() {
        return notifier.revision;
      },
      get certificates() {
        return list;
      },
      onChange: notifier.onChange,
      close: async () => undefined,
    };
    const core = createDecisionCore({ validateTrust: { ca: set } });
    const who = peer(pki.leaf1);
    expect(outcomeOf(await core.decide(who))).toBe("admitted");
    list = [parseCertificate(pki.otherRoot.cert)];
    notifier.changed();
    expect(outcomeOf(await core.decide(who))).toBe("untrusted");
  });
});

describe("createDecisionCore() rules", () => {
  const options = (): ClientCertOptions => ({
    store: everyone,
    identities: [{ commonName: "alice" }],
    rules: [
      { procedure: "/pkg.v1.Health/Check", allow: "any" },
      { procedure: "/pkg.v1.Admin/*", identities: [{ commonName: "carol" }] },
      { procedure: "/pkg.v1.Admin/Audit", identities: [{ commonName: "bob" }] },
      { procedure: ["/pkg.v1.Public/Read", "/pkg.v1.Public/List"], allow: "authenticated" },
      { procedure: "/pkg.v1.Strict/*", requireClientAuthUsage: true, identities: [{ commonName: "server-only" }] },
      { procedure: "/pkg.v1.Rollout/*", reportOnly: true, identities: [{ commonName: "carol" }] },
    ],
  });
  const table: [string, string, () => IssuedCertificate, string][] = [
    ["the default rule admits alice", "/pkg.v1.Other/Get", () => pki.leaf1, "admitted"],
    ["the default rule refuses bob", "/pkg.v1.Other/Get", () => pki.leaf2, "not_allowed"],
    ["a service rule admits carol", "/pkg.v1.Admin/Delete", () => pki.leaf3, "admitted"],
    ["a service rule refuses alice", "/pkg.v1.Admin/Delete", () => pki.leaf1, "not_allowed"],
    ["the first match wins over a later method rule (carol)", "/pkg.v1.Admin/Audit", () => pki.leaf3, "admitted"],
    ["the first match wins over a later method rule (bob)", "/pkg.v1.Admin/Audit", () => pki.leaf2, "not_allowed"],
    ["allow: authenticated admits bob", "/pkg.v1.Public/List", () => pki.leaf2, "admitted"],
    ["allow: authenticated still refuses an expired certificate", "/pkg.v1.Public/Read", () => expired, "expired"],
    ["a rule's override refuses a server-only certificate", "/pkg.v1.Strict/Do", () => pki.serverOnly, "wrong_usage"],
    [
      "no rule's override admits a server-only certificate... with the default identities",
      "/pkg.v1.Public/Read",
      () => pki.serverOnly,
      "admitted",
    ],
  ];
  it.each(table)("%s", async (_, procedure, who, expected) => {
    expect(outcomeOf(await createDecisionCore(options()).decide(peer(who()), procedure))).toBe(expected);
  });
  it("leaves an open procedure open and decides the others", () => {
    const core = createDecisionCore(options());
    expect(core.isOpen("/pkg.v1.Health/Check")).toBe(true);
    expect(core.isOpen("/pkg.v1.Health/Watch")).toBe(false);
  });
  it("refuses in a report-only rule but marks the refusal, and reports it", async () => {
    const events: DecisionEvent[] = [];
    const core = createDecisionCore({ ...options(), onDecision: (e) => events.push(e) });
    const decision = await core.decide(peer(pki.leaf1), "/pkg.v1.Rollout/Go");
    expect(decision.kind === "refused" && decision.reportOnly).toBe(true);
    core.report(decision, "/pkg.v1.Rollout/Go", "gate");
    expect(events[0]).toMatchObject({
      kind: "refused",
      reason: "not_allowed",
      reportOnly: true,
      rule: "/pkg.v1.Rollout/*",
      code: Code.PermissionDenied,
    });
    const enforced = await core.decide(peer(pki.leaf2), "/pkg.v1.Other/Get");
    expect(enforced.kind === "refused" && enforced.reportOnly).toBeUndefined();
  });
  it.each([
    ["an unknown rule field", { procedure: "*", identites: [] }],
    ["a bad procedure pattern", { procedure: "pkg.v1.Admin/Delete" }],
    ["a wildcard in the middle", { procedure: "/pkg.*/Delete" }],
    ["allow: any with identities", { procedure: "*", allow: "any", identities: [{ commonName: "x" }] }],
    ["an unknown allow", { procedure: "*", allow: "all" }],
  ])("throws at start-up on %s", (_, rule) => {
    expect(() => createDecisionCore({ store: everyone, rules: [rule as never] })).toThrow(/rules\[0\]/);
  });
});

describe("createDecisionCore() configuration", () => {
  it.each([
    ["no store and no trust", {}, /options\.store is required/],
    ["no store and tls trust without identities", { validateTrust: "tls" }, /options\.store is required/],
    [
      "revocation without CA certificates",
      { store: everyone, validateRevocation: { crls: [] as string[] } },
      /validateRevocation/,
    ],
    ["revocation: true", { store: everyone, validateRevocation: true }, /validateRevocation/],
    [
      "issuerThumbprint without a chain",
      { store: everyone, identities: [{ issuerThumbprint: "a".repeat(40) }] },
      /issuerThumbprint/,
    ],
    [
      "issuerCertificateId without a source",
      { store: everyone, identities: [{ issuerCertificateId: "x" }] },
      /issuerCertificateId/,
    ],
    ["a negative clock skew", { store: everyone, clockSkewMs: -1 }, /clockSkewMs/],
    ["a bad validateTrust", { store: everyone, validateTrust: "yes" }, /validateTrust/],
    [
      "a string for a boolean",
      { store: everyone, requireClientAuthUsage: "true" },
      /requireClientAuthUsage must be a boolean/,
    ],
    [
      "a string for a boolean in a rule",
      { store: everyone, rules: [{ procedure: "*", reportOnly: "no" }] },
      /rules\[0\]\.reportOnly/,
    ],
  ])("throws at start-up on %s", (_, options, message) => {
    expect(() => createDecisionCore(options as ClientCertOptions)).toThrow(message);
  });
  it("admits no store with tls trust and identities", async () => {
    const core = createDecisionCore({ validateTrust: "tls", identities: [{ commonName: "alice" }] });
    expect(outcomeOf(await core.decide(peer(pki.leaf1, true)))).toBe("admitted");
    expect(outcomeOf(await core.decide(peer(pki.leaf1, false)))).toBe("untrusted");
  });
});

describe("createDecisionCore() expiry warning", () => {
  const events = async (days: number | undefined, who: IssuedCertificate) => {
    const seen: DecisionEvent[] = [];
    const core = createDecisionCore({
      store: everyone,
      onDecision: (e) => seen.push(e),
      ...(days === undefined ? {} : { expiryWarningDays: days }),
    });
    core.report(await core.decide(peer(who)), "/pkg.v1.S/M", "interceptor");
    return seen[0];
  };
  it("admits and flags a certificate expiring within expiryWarningDays", async () => {
    expect((await events(30, expiringSoon))?.expiresSoon).toBe(true);
  });
  it("admits and does not flag one expiring later, or without the option", async () => {
    expect((await events(5, expiringSoon))?.expiresSoon).toBe(false);
    expect((await events(undefined, expiringSoon))?.expiresSoon).toBe(false);
  });
});
