import * as fs from "node:fs";
import * as path from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import type { StoredCertificate, WritableCertificateStore } from "../../core/store.js";
import { syncDirectory, writeFileAtomic } from "./atomic-write.js";
import { encodeStoredFile } from "./certificate-file.js";
import { classifyName } from "./folder-files.js";
import type { LeafFolder } from "./leaf-folder.js";
import { checkUpload, namesOnDisk, parseEntryId, readStored, storedCertificate, writeError } from "./store-io.js";

/**
 * WritableSideContext is what the write side needs of the folder store.
 */
export interface WritableSideContext {
  readonly directory: string;
  readonly maxFileBytes: number;
  readonly leaf: LeafFolder;
  /** The current time, epoch ms. */
  now(): number;
  /** Runs `task` when no scan or other write is running. */
  exclusive<T>(task: () => Promise<T>): Promise<T>;
  /** Re-reads the given file names and publishes what changed (called inside `exclusive`). */
  sync(names: string[]): Promise<void>;
  isClosed(): boolean;
}

/**
 * createWritableSide returns `put`, `delete`, `get` and `list` of the folder
 * store. Writes are serialized with the folder scans, so none is lost and
 * none is half-seen; each applies its own change to the index before it
 * resolves, so the next call sees it.
 *
 * `put` writes `<id>.pem`: two lines of explanatory text (`certgate-create-time:`
 * and `certgate-labels:`) before the PEM armour, through a temporary file,
 * fsync, a hard link to the name (never replacing a file created meanwhile)
 * and fsync of the folder. `delete` removes every file of the
 * id. `get` and `list` read the files from disk; a bundle file's n-th
 * certificate (n >= 2) has the id `<id>#n`.
 */
export function createWritableSide(
  context: WritableSideContext,
): Pick<WritableCertificateStore, "put" | "delete" | "get" | "list"> {
  const { directory, maxFileBytes, leaf, now, exclusive, sync, isClosed } = context;

  // The files of an id besides the lower-case names: the loaded one, and the
  // skipped ones (a duplicate such as `alice.CER` beside `alice.pem`), which
  // the next scan would load once the others are gone.
  function knownNames(fileId: string): string[] {
    const known = leaf.index.file(fileId);
    const names = known === undefined ? [] : [known.name];
    for (const problem of leaf.problems()) {
      const kind = classifyName(problem.file);
      if (kind.kind === "certificate" && kind.id === fileId) names.push(problem.file);
    }
    return names;
  }

  function ensureOpen(): void {
    if (isClosed()) throw new ConnectError("directory store is closed", Code.FailedPrecondition);
  }

  async function put(
    id: string,
    der: Uint8Array,
    putOptions?: { labels?: Readonly<Record<string, string>> },
  ): Promise<StoredCertificate> {
    const { fileId, member } = parseEntryId(id);
    if (member !== 0)
      throw new ConnectError(
        `invalid certificate id ${JSON.stringify(id)}: '#' names a certificate inside a bundle`,
        Code.InvalidArgument,
      );
    const labels = putOptions?.labels ?? {};
    const certificate = checkUpload(der, labels);
    return exclusive(async () => {
      ensureOpen();
      if (namesOnDisk(directory, fileId, knownNames(fileId)).length > 0) {
        throw new ConnectError(`certificate ${JSON.stringify(fileId)} already exists`, Code.AlreadyExists);
      }
      const createTime = new Date(Math.floor(now()));
      try {
        await writeFileAtomic(directory, `${fileId}.pem`, encodeStoredFile(certificate, createTime, labels), {
          create: true,
        });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "EEXIST") {
          // Another writer (a process sharing the folder) created it after
          // the check above: theirs stays, and the index learns of it.
          await sync([`${fileId}.pem`]);
          throw new ConnectError(`certificate ${JSON.stringify(fileId)} already exists`, Code.AlreadyExists);
        }
        throw writeError("store the certificate", error);
      }
      await sync([`${fileId}.pem`]);
      return storedCertificate(fileId, certificate, labels, createTime);
    });
  }

  async function remove(id: string): Promise<void> {
    const { fileId, member } = parseEntryId(id);
    if (member !== 0)
      throw new ConnectError(
        `cannot delete ${JSON.stringify(id)} alone: it is inside a bundle; delete ${JSON.stringify(fileId)}`,
        Code.InvalidArgument,
      );
    return exclusive(async () => {
      ensureOpen();
      const names = namesOnDisk(directory, fileId, knownNames(fileId));
      if (names.length === 0) throw new ConnectError(`certificate ${JSON.stringify(fileId)} not found`, Code.NotFound);
      try {
        for (const name of names) await fs.promises.unlink(path.join(directory, name));
        await syncDirectory(directory);
      } catch (error) {
        throw writeError("delete the certificate", error);
      } finally {
        await sync(names);
      }
    });
  }

  async function get(id: string): Promise<StoredCertificate | undefined> {
    const { fileId, member } = parseEntryId(id);
    const file = leaf.index.file(fileId);
    if (file === undefined) return undefined;
    return readStored(directory, fileId, file.name, maxFileBytes)?.[member];
  }

  async function list(listOptions: { after?: string; limit: number }): Promise<StoredCertificate[]> {
    const { after, limit } = listOptions;
    if (!Number.isInteger(limit) || limit < 1)
      throw new ConnectError("limit must be a positive integer", Code.InvalidArgument);
    const ids = leaf.index.sortedEntryIds();
    let low = 0;
    if (after !== undefined) {
      let high = ids.length;
      while (low < high) {
        const mid = (low + high) >>> 1;
        if (ids[mid]! <= after) low = mid + 1;
        else high = mid;
      }
    }
    const out: StoredCertificate[] = [];
    const files = new Map<string, StoredCertificate[] | undefined>();
    for (let i = low; i < ids.length && out.length < limit; i++) {
      const { fileId, member } = parseEntryId(ids[i]!);
      if (!files.has(fileId)) {
        const file = leaf.index.file(fileId);
        files.set(fileId, file === undefined ? undefined : readStored(directory, fileId, file.name, maxFileBytes));
      }
      const stored = files.get(fileId)?.[member];
      if (stored !== undefined) out.push(stored);
    }
    return out;
  }

  return { put, delete: remove, get, list };
}
