import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createDirectoryStore,
  parseCertificate,
  type DirectoryStoreProblem,
  type StoreChange,
} from "../../../src/index.js";
import { waitFor } from "../../support/harness.js";
import { generateCertificates, type ManyCertificates } from "../../support/many-certificates.js";
import { atomicWrite } from "../../support/tls-rotation.js";

let tmp: string;
let many: ManyCertificates;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "certgate-k8s-folder-"));
  many = await generateCertificates(1200, "mounted");
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

const name = (i: number) => `client-${String(i).padStart(4, "0")}.der`;

describe("createDirectoryStore() on a Kubernetes Secret or ConfigMap mount", () => {
  it("follows the kubelet's atomic ..data swap of 1,000 certificates: every add, removal and change seen once", async () => {
    const dir = join(tmp, "mount");
    // 1,000 files: client-0000 ... client-0999.
    const before: Record<string, Uint8Array> = {};
    for (let i = 0; i < 1000; i++) before[name(i)] = many.ders[i]!;
    await atomicWrite(dir, before);
    const problems: DirectoryStoreProblem[] = [];
    const store = await createDirectoryStore({
      directory: dir,
      onProblem: (p) => problems.push(p),
      rescanIntervalMs: 0,
    });
    try {
      expect(store.stats()).toMatchObject({ files: 1000, certificates: 1000 });
      const changes: StoreChange[] = [];
      store.onChanges((list) => changes.push(...list));

      // The next version of the Secret: 0-99 gone, 100-199 replaced by new
      // certificates, 1000-1099 added, 200-999 as they were.
      const after: Record<string, Uint8Array> = {};
      for (let i = 100; i < 1100; i++) after[name(i)] = i < 200 ? many.ders[i + 900]! : many.ders[i]!;
      const revision = store.revision;
      await atomicWrite(dir, after);
      await waitFor(() => changes.length >= 300, "the swap's 300 changes", 30_000);
      // A full re-read now finds nothing more to change: each was seen once.
      await store.rescan();
      expect(changes).toHaveLength(300);
      const ids = (kind: "put" | "delete") =>
        changes
          .filter((c) => c.kind === kind)
          .map((c) => c.id)
          .sort();
      const range = (from: number, to: number) =>
        Array.from({ length: to - from }, (_, k) => name(from + k).replace(/\.der$/, ""));
      expect(ids("delete")).toEqual(range(0, 100));
      expect(ids("put")).toEqual([...range(100, 200), ...range(1000, 1100)]);
      expect(store.revision).toBeGreaterThan(revision);
      expect(store.stats()).toMatchObject({ files: 1000, certificates: 1000 });
      expect(problems).toEqual([]);

      const verdict = async (i: number) =>
        (await store.lookup(parseCertificate(many.ders[i]!), new AbortController().signal)).kind;
      expect(await verdict(0)).toBe("refused"); // removed
      expect(await verdict(150)).toBe("refused"); // replaced
      expect(await verdict(1050)).toBe("admitted"); // its replacement (client-0150)
      expect(await verdict(500)).toBe("admitted"); // unchanged
      expect(await verdict(1099)).toBe("admitted"); // added (client-1099)
    } finally {
      await store.close();
    }
  }, 60_000);
});
