// A WritableCertificateStore of synthetic device certificates for the mirror
// benchmarks: ids `device-0000000`..., a SHA-256 thumbprint per id (the hash
// of the id: uniformly spread like real ones), no DER, a fleet label out of
// four. It costs the service next to nothing to list, so that
// bench/mirror-scale.ts measures the mirrors, not a store's reads.
import * as crypto from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  createChangeNotifier,
  type StoreChange,
  type StoredCertificate,
  type WritableCertificateStore,
} from "../src/core/store.js";

/** syntheticId names certificate `i`. */
export function syntheticId(i: number): string {
  return `device-${String(i).padStart(7, "0")}`;
}

/** syntheticSha256 is certificate `i`'s SHA-256 thumbprint, upper-case hex. */
export function syntheticSha256(i: number): string {
  return crypto.createHash("sha256").update(syntheticId(i)).digest("hex").toUpperCase();
}

const fleets = [0, 1, 2, 3].map((n) => Object.freeze({ fleet: `fleet-${n}` }));

/**
 * createSyntheticStore returns a store holding certificates 0..count-1,
 * ordered by id (the ids sort as their numbers). Only `delete` changes it.
 */
export function createSyntheticStore(count: number): WritableCertificateStore {
  const notifier = createChangeNotifier();
  const listeners = new Set<(changes: readonly StoreChange[], revision: number) => void>();
  const sha256 = new Array<string>(count);
  for (let i = 0; i < count; i++) sha256[i] = syntheticSha256(i);
  const deleted = new Uint8Array(count);
  const createTime = new Date();
  const entry = (i: number): StoredCertificate => ({
    id: syntheticId(i),
    der: new Uint8Array(0),
    sha1: sha256[i]!.slice(0, 40),
    sha256: sha256[i]!,
    labels: fleets[i & 3]!,
    createTime,
  });
  const indexOf = (id: string) => {
    const i = /^device-\d{7}$/.test(id) ? Number(id.slice(7)) : -1;
    return i >= 0 && i < count && deleted[i] === 0 ? i : -1;
  };
  return {
    get revision() {
      return notifier.revision;
    },
    lookup: async () => ({ kind: "refused", reason: "not_allowed" }),
    onChange: notifier.onChange,
    close: async () => undefined,
    put: async () => {
      throw new ConnectError("the synthetic store is read-only", Code.Unimplemented);
    },
    async delete(id) {
      const i = indexOf(id);
      if (i < 0) throw new ConnectError(`no certificate ${id}`, Code.NotFound);
      deleted[i] = 1;
      notifier.changed();
      for (const listener of [...listeners]) listener([{ kind: "delete", id }], notifier.revision);
    },
    get: async (id) => {
      const i = indexOf(id);
      return i < 0 ? undefined : entry(i);
    },
    async list({ after, limit }) {
      let i = after === undefined ? 0 : /^device-\d{7}$/.test(after) ? Number(after.slice(7)) + 1 : count;
      const page: StoredCertificate[] = [];
      for (; i < count && page.length < limit; i++) if (deleted[i] === 0) page.push(entry(i));
      return page;
    },
    onChanges(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
  };
}
