import "reflect-metadata";
import { webcrypto } from "node:crypto";
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCertificate, type Certificate } from "../../src/core/certificate.js";
import {
  createCertificateFileSet,
  createCertificateSet,
  createCertificateSetFromStore,
} from "../../src/policy/certificate-set.js";
import { createChainBuilder } from "../../src/policy/chain.js";
import { createCrlFileSet, createCrlSet } from "../../src/policy/crl-set.js";
import { createRevocationChecker, type RevocationCheckerOptions } from "../../src/policy/revocation.js";
import { createChangeNotifier, type StoredCertificate } from "../../src/core/store.js";
import { waitFor } from "../support/harness.js";
import { createCrl, createPolicyPki, issue, serialOf, type PolicyPki } from "../support/policy-pki.js";

let pki: PolicyPki;
let c: Record<"root" | "int1" | "int2" | "leaf1" | "leaf2" | "leaf3" | "otherRoot" | "stranger", Certificate>;
const now = () => Date.now();
beforeAll(async () => {
  pki = await createPolicyPki();
  c = {
    root: parseCertificate(pki.root.cert),
    int1: parseCertificate(pki.int1.cert),
    int2: parseCertificate(pki.int2.cert),
    leaf1: parseCertificate(pki.leaf1.cert),
    leaf2: parseCertificate(pki.leaf2.cert),
    leaf3: parseCertificate(pki.leaf3.cert),
    otherRoot: parseCertificate(pki.otherRoot.cert),
    stranger: parseCertificate(pki.stranger.cert),
  };
});

describe("createChainBuilder()", () => {
  const cases = [
    ["depth 1 (root → leaf)", "leaf1", 2],
    ["depth 2 (root → int1 → leaf)", "leaf2", 3],
    ["depth 3 (root → int1 → int2 → leaf)", "leaf3", 4],
  ] as const;
  it.each(cases)("admits a chain of %s", (_, leaf, length) => {
    const builder = createChainBuilder(createCertificateSet([pki.root.cert, pki.int1.cert, pki.int2.cert]));
    const result = builder.build(c[leaf], now());
    expect(result.kind).toBe("built");
    expect(result.kind === "built" && result.chain.length).toBe(length);
    expect(result.kind === "built" && result.chain.at(-1)?.sha256).toBe(c.root.sha256);
  });
  it.each(cases)("refuses a chain of %s when the root is missing", (_, leaf) => {
    const builder = createChainBuilder(createCertificateSet([pki.otherRoot.cert, pki.int1.cert, pki.int2.cert]));
    expect(builder.build(c[leaf], now()).kind).toBe("failed");
  });
  it("refuses a chain whose intermediate is missing", () => {
    const builder = createChainBuilder(createCertificateSet([pki.root.cert, pki.int2.cert]));
    expect(builder.build(c.leaf3, now()).kind).toBe("failed");
  });
  it("refuses a certificate of another CA with the same subject", () => {
    const builder = createChainBuilder(createCertificateSet([pki.root.cert]));
    expect(builder.build(c.stranger, now()).kind).toBe("failed");
  });
  it("admits a partial chain only when allowed", () => {
    const set = createCertificateSet([pki.int1.cert]);
    expect(createChainBuilder(set).build(c.leaf2, now()).kind).toBe("failed");
    expect(createChainBuilder(set, { allowPartialChain: true }).build(c.leaf2, now()).kind).toBe("built");
  });
  it("refuses a chain through an expired intermediate, and bounds a good chain by its CAs' expiry", async () => {
    const old = await issue(pki.root, {
      commonName: "Old Int",
      isCA: true,
      usages: [],
      notBefore: new Date(Date.now() - 10 * 86400_000),
      notAfter: new Date(Date.now() - 86400_000),
    });
    const leaf = parseCertificate((await issue(old, { commonName: "late", usages: ["client"] })).cert);
    const builder = createChainBuilder(createCertificateSet([pki.root.cert, old.cert]));
    expect(builder.build(leaf, now()).kind).toBe("failed");
    const good = createChainBuilder(createCertificateSet([pki.root.cert, pki.int1.cert])).build(c.leaf2, now());
    expect(good.kind === "built" && good.expiresAt).toBe(
      Math.min(c.root.notAfter.getTime(), c.int1.notAfter.getTime()),
    );
  });
  it("refuses a chain through an issuer that is not a CA, and one past a path length constraint", async () => {
    const notCa = await issue(pki.root, { commonName: "Not a CA", usages: ["client"] });
    const below = parseCertificate((await issue(notCa, { commonName: "below", usages: ["client"] })).cert);
    expect(createChainBuilder(createCertificateSet([pki.root.cert, notCa.cert])).build(below, now()).kind).toBe(
      "failed",
    );
    // A root with pathLenConstraint 0 may not have intermediates below it.
    const keys = (await webcrypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
      "sign",
      "verify",
    ])) as webcrypto.CryptoKeyPair;
    const strictRoot = await x509.X509CertificateGenerator.createSelfSigned({
      name: "CN=Strict Root",
      keys,
      signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      ],
    });
    const strict = {
      cert: strictRoot.toString("pem"),
      key: "",
      der: new Uint8Array(strictRoot.rawData),
      keys,
      x509: strictRoot,
    };
    const int = await issue(strict, { commonName: "Strict Int", isCA: true, usages: [] });
    const direct = parseCertificate((await issue(strict, { commonName: "direct", usages: ["client"] })).cert);
    const deep = parseCertificate((await issue(int, { commonName: "deep", usages: ["client"] })).cert);
    const builder = createChainBuilder(createCertificateSet([strict.cert, int.cert]));
    expect(builder.build(direct, now()).kind).toBe("built");
    expect(builder.build(deep, now()).kind).toBe("failed");
  });
});

describe("createRevocationChecker()", () => {
  let crls: Record<string, string>;
  let chain3: Certificate[];
  beforeAll(async () => {
    const big = Array.from({ length: 10_000 }, (_, i) => (0x100000 + i).toString(16));
    crls = {
      root: await createCrl(pki.root),
      int1: await createCrl(pki.int1),
      int2: await createCrl(pki.int2),
      int2RevokesLeaf: await createCrl(pki.int2, { revoked: [...big, serialOf(pki.leaf3)] }),
      int1RevokesInt2: await createCrl(pki.int1, { revoked: [serialOf(pki.int2)] }),
      rootRevokesInt1: await createCrl(pki.root, { revoked: [serialOf(pki.int1)] }),
      int2Stale: await createCrl(pki.int2, {
        thisUpdate: new Date(Date.now() - 3 * 86400_000),
        nextUpdate: new Date(Date.now() - 86400_000),
      }),
      int2BadlySigned: await createCrl(pki.int2, {
        revoked: [],
        signingKey: pki.otherRoot.keys.privateKey as webcrypto.CryptoKey,
      }),
      int2Delta: await createCrl(pki.int2, {
        extensions: [new x509.Extension("2.5.29.27", true, new Uint8Array([2, 1, 1]))],
      }),
    };
    chain3 = [c.leaf3, c.int2, c.int1, c.root];
  });
  const check = (names: string[], options: RevocationCheckerOptions = {}) => {
    const errors: string[] = [];
    const checker = createRevocationChecker(
      createCrlSet(names.map((n) => crls[n] as string)),
      createCertificateSet([pki.root.cert, pki.int1.cert, pki.int2.cert]),
      { onError: (e) => errors.push(e.message), ...options },
    );
    return { result: checker.check(chain3, now()), errors };
  };
  const table: [string, string[], RevocationCheckerOptions, string][] = [
    ["admits a chain with a current CRL for each issuer", ["root", "int1", "int2"], {}, "good"],
    ["refuses a revoked leaf (among 10,000 revoked serials)", ["root", "int1", "int2RevokesLeaf"], {}, "revoked"],
    ["refuses a revoked intermediate (int2, listed by int1)", ["root", "int1RevokesInt2", "int2"], {}, "revoked"],
    ["refuses a revoked intermediate (int1, listed by the root)", ["rootRevokesInt1", "int1", "int2"], {}, "revoked"],
    ["refuses when an issuer has no CRL", ["root", "int1"], {}, "crl_unavailable"],
    ["admits a missing CRL with allowMissing", ["root", "int1"], { allowMissing: true }, "good"],
    ["refuses a stale CRL", ["root", "int1", "int2Stale"], {}, "stale_crl"],
    ["admits a stale CRL with allowStale", ["root", "int1", "int2Stale"], { allowStale: true }, "good"],
    ["refuses when the only CRL is badly signed", ["root", "int1", "int2BadlySigned"], {}, "crl_unavailable"],
    ["refuses when the only CRL is a delta CRL", ["root", "int1", "int2Delta"], {}, "crl_unavailable"],
    [
      "refuses a revoked leaf even if another issuer's CRL is stale",
      ["root", "int1", "int2RevokesLeaf", "int2Stale"],
      {},
      "revoked",
    ],
  ];
  it.each(table)("%s", (_, names, options, expected) => {
    const { result } = check(names, options);
    expect(result.kind === "good" ? "good" : result.reason).toBe(expected);
  });
  it("reports the CRLs it cannot use", () => {
    expect(check(["root", "int1", "int2BadlySigned"]).errors.join()).toMatch(/signature does not verify/);
    expect(check(["root", "int1", "int2Delta"]).errors.join()).toMatch(/delta CRLs are not supported/);
  });
  it("keeps 10,000 revoked serials in a set", () => {
    expect(createCrlSet([crls.int2RevokesLeaf as string]).crls[0]?.revoked.size).toBe(10_001);
  });
  it("says when a good result must be checked again (nextUpdate)", () => {
    const { result } = check(["root", "int1", "int2"]);
    expect(result.kind === "good" && result.expiresAt).toBeGreaterThan(Date.now());
    expect(result.kind === "good" && result.expiresAt).toBeLessThan(Date.now() + 2 * 86400_000);
  });
});

describe("createCrlFileSet()", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "certgate-crl-"));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));
  it("admits again, then refuses a leaf revoked by a CRL replaced on disk", async () => {
    await writeFile(join(dir, "root.crl"), await createCrl(pki.root));
    await writeFile(join(dir, "int1.crl"), await createCrl(pki.int1));
    const errors: Error[] = [];
    const set = await createCrlFileSet({ directory: dir, reloadIntervalMs: 60_000, onError: (e) => errors.push(e) });
    try {
      const checker = createRevocationChecker(set, createCertificateSet([pki.root.cert, pki.int1.cert]), {
        onError: () => undefined,
      });
      const chain = [c.leaf2, c.int1, c.root];
      expect(checker.check(chain, now()).kind).toBe("good");
      const before = set.revision;
      await writeFile(join(dir, ".int1.tmp"), await createCrl(pki.int1, { revoked: [serialOf(pki.leaf2)] }));
      await rename(join(dir, ".int1.tmp"), join(dir, "int1.crl"));
      await waitFor(() => set.revision !== before, "the CRL reload");
      expect(checker.check(chain, now()).kind).toBe("revoked");
      // A broken file keeps the last good CRL of that file and is reported.
      const after = set.revision;
      await writeFile(join(dir, "int1.crl"), "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n");
      await waitFor(() => errors.length > 0, "the reload error");
      expect(set.revision).toBe(after);
      expect(checker.check(chain, now()).kind).toBe("revoked");
    } finally {
      await set.close();
    }
  });
  it("refuses to start on a missing folder or a file that is not a CRL", async () => {
    await expect(createCrlFileSet({ directory: join(dir, "missing") })).rejects.toThrow(/cannot read/);
    const bad = join(dir, "bad.pem");
    await writeFile(bad, "not a crl");
    await expect(createCrlFileSet({ files: [bad] })).rejects.toThrow(/bad\.pem/);
  });
});

describe("createCertificateFileSet()", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "certgate-ca-"));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));
  it("admits the CA certificates of a folder and picks up a new one", async () => {
    await writeFile(join(dir, "root.pem"), pki.root.cert);
    const set = await createCertificateFileSet({ directory: dir });
    try {
      expect(set.certificates.map((x) => x.sha256)).toEqual([c.root.sha256]);
      const before = set.revision;
      await writeFile(join(dir, "int1.pem"), pki.int1.cert + pki.int2.cert);
      await waitFor(() => set.revision !== before, "the CA reload");
      expect(set.certificates).toHaveLength(3);
    } finally {
      await set.close();
    }
  });
  it("warns, and keeps serving, when its onError hook throws on a reload error", async () => {
    const folder = await mkdtemp(join(tmpdir(), "certgate-ca-hook-"));
    await writeFile(join(folder, "root.pem"), pki.root.cert);
    const warned = new Promise<Error>((resolve) => {
      const listen = (warning: Error) => {
        if (warning.message.includes("onError threw: hook failed")) {
          process.off("warning", listen);
          resolve(warning);
        }
      };
      process.on("warning", listen);
    });
    const set = await createCertificateFileSet({
      directory: folder,
      onError: () => {
        throw new Error("hook failed");
      },
    });
    try {
      await writeFile(join(folder, "junk.pem"), "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");
      expect((await warned).message).toMatch(/junk\.pem/);
      expect(set.certificates.map((x) => x.sha256)).toEqual([c.root.sha256]);
    } finally {
      await set.close();
      await rm(folder, { recursive: true, force: true });
    }
  });
  it("refuses to start on a file holding a private key", async () => {
    const file = join(dir, "leaf.pem");
    await writeFile(file, pki.leaf1.cert + pki.leaf1.key);
    await expect(createCertificateFileSet({ files: [file] })).rejects.toThrow(/private key/);
  });
});

describe("createCertificateSetFromStore()", () => {
  it("admits the certificates of a store and reads them again on change", async () => {
    const notifier = createChangeNotifier();
    const stored = (id: string, pem: string): StoredCertificate => {
      const cert = parseCertificate(pem);
      return { id, der: cert.der, sha1: cert.sha1, sha256: cert.sha256, labels: {}, createTime: new Date() };
    };
    let contents = [stored("root", pki.root.cert)];
    const set = await createCertificateSetFromStore({ list: async () => contents, onChange: notifier.onChange });
    try {
      expect(set.certificates).toHaveLength(1);
      contents = [stored("other", pki.otherRoot.cert)];
      const before = set.revision;
      notifier.changed();
      await waitFor(() => set.revision !== before, "the store reload");
      expect(set.certificates[0]?.sha256).toBe(c.otherRoot.sha256);
    } finally {
      await set.close();
    }
  });
  it("refuses to start on an empty store", async () => {
    await expect(
      createCertificateSetFromStore({ list: async () => [], onChange: () => () => undefined }),
    ).rejects.toThrow(/no certificate/);
  });
});
