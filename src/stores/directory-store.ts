import { observeStoreSize } from "../core/metrics.js";
import * as path from "node:path";
import type { Certificate } from "../core/certificate.js";
import {
  createChangeNotifier,
  type StoreChange,
  type StoreVerdict,
  type WritableCertificateStore,
} from "../core/store.js";
import { lookupFromMemory } from "../core/sync-lookup.js";
import { cleanTemporaryFiles } from "./directory/atomic-write.js";
import { createCaFolder, type CaFolder } from "./directory/ca-folder.js";
import { createCaVerifier, type CaVerifier } from "./directory/ca-verifier.js";
import { createChangeScheduler, type ChangeScheduler } from "./directory/change-scheduler.js";
import { createLeafFolder } from "./directory/leaf-folder.js";
import type { ScanResult } from "./directory/scan-plan.js";
import type { DirectoryStoreProblem } from "./directory/types.js";
import { resolveDirectoryOptions, type DirectoryStoreOptions } from "./directory/directory-store-options.js";
import { createFolderProblems } from "./directory/folder-problems.js";
import { createWritableSide } from "./directory/writable-side.js";
import { okAuditRecord, type AuditedWrite, type AuditLog } from "../core/audit.js";
import { createAuditFile } from "./directory/audit-file.js";

// The problem types live beside the modules that find problems.
export type { DirectoryProblemCode, DirectoryStoreProblem } from "./directory/types.js";
export type { DirectoryStoreOptions } from "./directory/directory-store-options.js";

/**
 * DirectoryStore is the folder store: a `WritableCertificateStore` over a
 * folder of certificate files.
 */
export interface DirectoryStore extends WritableCertificateStore {
  /**
   * The audit trail: `.certgate-audit.jsonl` in the folder, opened on first
   * use (see docs/audit.md).
   */
  readonly audit: AuditLog;
  /** The files and folders currently skipped, and why. */
  problems(): DirectoryStoreProblem[];
  /** Re-reads both folders now (files whose signature did not change are not read again). */
  rescan(): Promise<void>;
  /** How many files and certificates are loaded, and how many issuers. */
  stats(): { files: number; certificates: number; issuers: number };
}

/**
 * createDirectoryStore loads a folder of uploaded client certificates and
 * keeps it loaded as it changes: it resolves once the folder is read, and
 * rejects with an error naming the folder when it does not exist or cannot
 * be read. See `DirectoryStoreOptions` for the folders and the rules.
 *
 * Changes (files added, replaced, renamed, removed, a Kubernetes `..data`
 * swap) are applied within about `debounceMs`, at once, and bump `revision`,
 * so open connections see them on their next call. Files that cannot be used
 * are skipped and reported through `onProblem` and `problems()`. If the
 * folder goes away, the last good set is served and the problem reported.
 *
 * @example
 * const store = await createDirectoryStore({ directory: "/etc/certgate/clients" });
 * connectNodeAdapter({ routes, interceptors: [createClientCertInterceptor({ store })], contextValues: peerCertificateContextValues });
 */
export async function createDirectoryStore(options: DirectoryStoreOptions): Promise<DirectoryStore> {
  const resolved = resolveDirectoryOptions(options);
  const { directory, caDirectory, maxFileBytes, debounceMs, rescanIntervalMs, now, onProblem, metrics } = resolved;

  const leaf = createLeafFolder(directory, maxFileBytes);
  const ca: CaFolder | undefined = caDirectory === undefined ? undefined : createCaFolder(caDirectory, maxFileBytes);
  const notifier = createChangeNotifier();
  const changeListeners = new Set<(changes: readonly StoreChange[], revision: number) => void>();
  const folderProblems = createFolderProblems({ onProblem, dropWatch: (folder) => scheduler?.dropWatch(folder) });
  const { report } = folderProblems;
  let verifier: CaVerifier = createCaVerifier([]);
  // Set once the first load is done; folder failures before it reject instead.
  let scheduler: ChangeScheduler | undefined;
  let closed = false;
  let queue: Promise<unknown> = Promise.resolve();

  // One scan or write at a time: a scan plans against the index it will
  // change, so nothing else may change it in between.
  function exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = queue.then(task);
    queue = run.catch(() => undefined);
    return run;
  }

  function publish(changes: readonly StoreChange[], issuersChanged: boolean): void {
    if (changes.length === 0 && !issuersChanged) return;
    notifier.changed();
    const revision = notifier.revision;
    for (const listener of [...changeListeners]) {
      try {
        listener(changes, revision);
      } catch {
        // A faulty listener must not keep the others from the change.
      }
    }
  }

  async function scanLeaf(run: () => Promise<ScanResult>): Promise<void> {
    let result: ScanResult;
    try {
      result = await run();
    } catch (error) {
      folderProblems.failed(directory, error);
      return;
    }
    folderProblems.recovered(directory);
    publish(result.changes, false);
    report(result.newProblems);
  }

  async function rescanAll(): Promise<void> {
    await scanLeaf(() => leaf.scanAll());
    await scanCa();
  }

  async function scanCa(): Promise<void> {
    if (ca === undefined || caDirectory === undefined) return;
    try {
      const { changed, newProblems } = await ca.scan();
      folderProblems.recovered(caDirectory);
      if (changed) verifier = createCaVerifier(ca.cas);
      publish([], changed);
      report(newProblems);
    } catch (error) {
      folderProblems.failed(caDirectory, error);
    }
  }

  // The first load: failures here reject, naming the folder.
  await cleanTemporaryFiles(directory, 60_000, Date.now());
  try {
    const first = await leaf.scanAll();
    report(first.newProblems);
    if (ca !== undefined) {
      const caFirst = await ca.scan();
      verifier = createCaVerifier(ca.cas);
      report(caFirst.newProblems);
    }
  } catch (error) {
    throw new Error(`certgate: cannot read the certificate folder: ${String((error as Error).message ?? error)}`, {
      cause: error,
    });
  }
  const started: ChangeScheduler = createChangeScheduler({
    directory,
    caDirectory,
    watch: options.watch ?? true,
    debounceMs,
    rescanIntervalMs,
    exclusive,
    async flush(pending) {
      if (pending.all) await scanLeaf(() => leaf.scanAll());
      else if (pending.names.size > 0) await scanLeaf(() => leaf.scanNames(pending.names));
      if (pending.ca) await scanCa();
    },
    rescan: rescanAll,
    onError: (error) => folderProblems.failed(directory, error),
  });
  scheduler = started;
  started.ensureWatches();
  const sizeGauge = observeStoreSize(metrics, () => leaf.index.certificates);

  // From memory: the index of the folder's certificates, then its CA folder.
  function lookupSync(certificate: Certificate): StoreVerdict {
    if (closed) return { kind: "error", error: new Error("directory store is closed") };
    try {
      const match = leaf.index.matchSha256(Buffer.from(certificate.sha256, "hex"));
      if (match !== undefined) {
        return { kind: "admitted", entry: { id: match.id, thumbprint: certificate.sha256 } };
      }
      if (verifier.empty) return { kind: "refused", reason: "not_allowed" };
      return verifier.verify(certificate, now());
    } catch (error) {
      return { kind: "error", error };
    }
  }

  const lookup = lookupFromMemory(lookupSync);

  const writable = createWritableSide({
    directory,
    maxFileBytes,
    leaf,
    now,
    exclusive,
    sync: (names) => scanLeaf(() => leaf.scanNames(names)),
    isClosed: () => closed,
  });

  // The audit trail: opened on first use, so API servers that only read the
  // folder never touch it.
  const audit = createAuditFile({
    directory,
    maxBytes: resolved.auditMaxBytes,
    attemptsMaxBytes: resolved.auditAttemptsMaxBytes,
    ...(options.auditKey === undefined ? {} : { key: options.auditKey }),
    onDamagedLine(file, line, reason) {
      report([
        {
          path: file,
          file: path.basename(file),
          code: "audit_record",
          reason: `line ${line} of the audit trail: ${reason}`,
          time: new Date(),
        },
      ]);
    },
    onFileChanged(file, reason) {
      report([{ path: file, file: path.basename(file), code: "audit_file", reason, time: new Date() }]);
    },
  });

  return {
    get revision() {
      return notifier.revision;
    },
    lookup,
    onChange: notifier.onChange,
    onChanges(listener) {
      changeListeners.add(listener);
      return () => {
        changeListeners.delete(listener);
      };
    },
    ...writable,
    async findSha256(thumbprint) {
      if (!/^[0-9A-F]{64}$/.test(thumbprint)) return undefined;
      const match = leaf.index.matchSha256(Buffer.from(thumbprint, "hex"));
      if (match === undefined) return undefined;
      // Read back and checked: the file may have changed since it was indexed.
      const stored = await writable.get(match.id);
      return stored?.sha256 === thumbprint ? stored : undefined;
    },
    audit,
    // The `ok` record follows the durable write; a crash in between loses
    // that one record (the PostgreSQL store writes both in one transaction).
    async put(id, der, putOptions?: { labels?: Readonly<Record<string, string>> } & AuditedWrite) {
      const stored = await writable.put(id, der, putOptions);
      const actor = putOptions?.actor;
      if (actor !== undefined) {
        const time = putOptions?.auditTime ?? new Date(Math.floor(now()));
        await audit.record(okAuditRecord(time, "create", actor, stored.id, stored.sha256));
      }
      return stored;
    },
    async delete(id, deleteOptions?: AuditedWrite) {
      const actor = deleteOptions?.actor;
      const before = actor === undefined ? undefined : await writable.get(id).catch(() => undefined);
      await writable.delete(id);
      if (actor !== undefined) {
        const time = deleteOptions?.auditTime ?? new Date(Math.floor(now()));
        await audit.record(okAuditRecord(time, "delete", actor, id, before?.sha256 ?? ""));
      }
    },
    problems: () => [...folderProblems.list(), ...leaf.problems(), ...(ca?.problems() ?? [])],
    rescan: () =>
      exclusive(async () => {
        if (closed) return;
        started.ensureWatches();
        await rescanAll();
      }),
    stats: () => ({ files: leaf.index.files, certificates: leaf.index.certificates, issuers: ca?.cas.length ?? 0 }),
    async close() {
      if (closed) return;
      closed = true;
      sizeGauge?.remove();
      started.close();
      notifier.changed();
      notifier.clear();
      changeListeners.clear();
      await queue;
      await audit.close();
    },
  };
}
