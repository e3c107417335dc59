import { Code, ConnectError } from "@connectrpc/connect";
import { isValidCertificateId, type StoredCertificate } from "../../core/store.js";
import { storedCertificate } from "../directory/store-io.js";
import { checkDer } from "./check-der.js";
import type { PutManyEntry } from "./postgres-store-options.js";

/**
 * assertId throws `InvalidArgument` for an id the stores do not take.
 */
export function assertId(id: string): void {
  if (typeof id !== "string" || !isValidCertificateId(id)) {
    throw new ConnectError(`invalid certificate id ${JSON.stringify(String(id)).slice(0, 140)}`, Code.InvalidArgument);
  }
}

/**
 * checkEntries checks a batch as `put` would each certificate; refused ones
 * are named by their position. A missing or invalid create time is now.
 */
export function checkEntries(
  entries: readonly PutManyEntry[],
  now: () => number,
): { checked: StoredCertificate[]; refused: { index: number; id: string; reason: string }[] } {
  const refused: { index: number; id: string; reason: string }[] = [];
  const checked: StoredCertificate[] = [];
  const seen = new Set<string>();
  entries.forEach((entry, index) => {
    try {
      assertId(entry.id);
      if (seen.has(entry.id))
        throw new ConnectError(`certificate ${JSON.stringify(entry.id)} given twice`, Code.InvalidArgument);
      seen.add(entry.id);
      const labels = entry.labels ?? {};
      const createTime =
        entry.createTime instanceof Date && !Number.isNaN(+entry.createTime)
          ? entry.createTime
          : new Date(Math.floor(now()));
      checked.push(storedCertificate(entry.id, checkDer(entry.der, labels), labels, createTime));
    } catch (error) {
      refused.push({
        index,
        id: String(entry.id),
        reason: error instanceof ConnectError ? error.rawMessage : String(error),
      });
    }
  });
  return { checked, refused };
}
