import { Code, ConnectError } from "@connectrpc/connect";
import type { Pool } from "pg";
import type { StoredCertificate } from "../../core/store.js";
import { okAuditRecord, type AuditActor, type AuditedWrite } from "../../core/audit.js";
import { storedCertificate } from "../directory/store-io.js";
import { checkDer } from "./check-der.js";
import { assertId, checkEntries } from "./check-entries.js";
import type { Tables } from "./db.js";
import { isConnectionError, storeError } from "./errors.js";
import type { PostgresStore } from "./postgres-store.js";
import type { ReplicaSync } from "./replica-sync.js";
import { deleteCertificate, insertCertificate, insertCertificates } from "./write-queries.js";

/**
 * PostgresWrites are the writes of a PostgreSQL store.
 */
export type PostgresWrites = Required<Pick<PostgresStore, "put" | "putMany" | "putAll" | "delete">>;

/**
 * PostgresWriteContext is what the writes of a PostgreSQL store share with the store.
 */
export interface PostgresWriteContext {
  /** The pool of writes. */
  readonly pool: Pool;
  readonly tables: Tables;
  /** The store's copy, which every write is read back into before it resolves. */
  readonly sync: ReplicaSync;
  readonly now: () => number;
  /** Throws once the store is closed. */
  readonly assertOpen: () => void;
  readonly isClosed: () => boolean;
}

/**
 * createPostgresWrites makes the writes of a PostgreSQL store: transactions
 * under the store's write lock, each with its audit records, read back into
 * the copy before they resolve.
 */
export function createPostgresWrites(context: PostgresWriteContext): PostgresWrites {
  const { pool, tables, sync, now, assertOpen, isClosed } = context;

  // Writes need the database now: try to reach it once more before refusing.
  async function assertWritable(): Promise<void> {
    assertOpen();
    if (sync.state !== "connected") await sync.catchUp();
    if (sync.state !== "connected") {
      throw new ConnectError("certificate store unavailable: the database is unreachable", Code.Unavailable);
    }
  }

  async function afterWrite(revision: number): Promise<void> {
    // Read our own write back, so that the next lookup here sees it.
    while (sync.head < revision && sync.state === "connected" && !isClosed()) await sync.catchUp();
  }

  const okRecord = (action: "create" | "delete", actor: AuditActor, id: string, sha256: string, time?: Date) =>
    okAuditRecord(time ?? new Date(Math.floor(now())), action, actor, id, sha256);

  // One multi-row insert in one transaction, with its audit records, read
  // back into the copy before it resolves.
  async function insertMany(checked: readonly StoredCertificate[], putOptions: AuditedWrite | undefined, all: boolean) {
    let result: { ids: string[]; revision: number; taken: string[] };
    try {
      const actor = putOptions?.actor;
      result = await insertCertificates(
        pool,
        tables,
        checked,
        actor === undefined
          ? undefined
          : { actor, time: putOptions?.auditTime ?? new Date(Math.floor(now())), batch: all },
        all,
      );
    } catch (error) {
      if (isConnectionError(error)) void sync.catchUp();
      throw storeError("store the certificates", error);
    }
    await afterWrite(result.revision);
    return result;
  }
  return {
    async put(id, der, putOptions) {
      assertOpen();
      assertId(id);
      const labels = putOptions?.labels ?? {};
      const certificate = checkDer(der, labels);
      await assertWritable();
      const createTime = putOptions?.createTime;
      const stored = storedCertificate(
        id,
        certificate,
        labels,
        createTime instanceof Date && !Number.isNaN(+createTime) ? createTime : new Date(Math.floor(now())),
      );
      let result: number | "exists";
      try {
        const actor = putOptions?.actor;
        result = await insertCertificate(
          pool,
          tables,
          stored,
          actor === undefined ? undefined : okRecord("create", actor, id, stored.sha256, putOptions?.auditTime),
        );
      } catch (error) {
        if (isConnectionError(error)) void sync.catchUp();
        throw storeError("store the certificate", error);
      }
      if (result === "exists")
        throw new ConnectError(`certificate ${JSON.stringify(id)} already exists`, Code.AlreadyExists);
      await afterWrite(result);
      return stored;
    },
    async putMany(entries, putOptions) {
      assertOpen();
      const { checked, refused } = checkEntries(entries, now);
      if (checked.length === 0) return { stored: [], taken: [], refused };
      await assertWritable();
      const result = await insertMany(checked, putOptions, false);
      const stored = new Set(result.ids);
      return { stored: [...stored], taken: checked.filter((c) => !stored.has(c.id)).map((c) => c.id), refused };
    },
    async putAll(entries, putOptions) {
      assertOpen();
      const { checked, refused } = checkEntries(entries, now);
      if (refused.length > 0) return { kind: "refused", items: refused };
      if (checked.length === 0) return { kind: "stored", certificates: [] };
      await assertWritable();
      const result = await insertMany(checked, putOptions, true);
      if (result.taken.length > 0) {
        const taken = new Set(result.taken);
        return {
          kind: "refused",
          items: checked.flatMap((c, index) =>
            taken.has(c.id) ? [{ index, id: c.id, reason: `certificate ${JSON.stringify(c.id)} already exists` }] : [],
          ),
        };
      }
      return { kind: "stored", certificates: checked };
    },
    async delete(id, deleteOptions?: AuditedWrite) {
      assertOpen();
      assertId(id);
      await assertWritable();
      let result: number | "missing";
      try {
        const actor = deleteOptions?.actor;
        result = await deleteCertificate(
          pool,
          tables,
          id,
          actor === undefined ? undefined : (sha256) => okRecord("delete", actor, id, sha256, deleteOptions?.auditTime),
        );
      } catch (error) {
        if (isConnectionError(error)) void sync.catchUp();
        throw storeError("delete the certificate", error);
      }
      if (result === "missing") throw new ConnectError(`certificate ${JSON.stringify(id)} not found`, Code.NotFound);
      await afterWrite(result);
    },
  };
}
