import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { temporaryPrefix } from "./folder-files.js";

/**
 * syncDirectory flushes a folder's entries (a rename or an unlink) to disk.
 * Filesystems that cannot fsync a folder are tolerated.
 */
export async function syncDirectory(directory: string): Promise<void> {
  const handle = await fs.promises.open(directory, "r");
  try {
    await handle.sync();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "EINVAL" && code !== "EISDIR" && code !== "EPERM") throw error;
  } finally {
    await handle.close();
  }
}

/**
 * writeFileAtomic writes `data` to `directory/name` so that readers see the
 * old file or the whole new one, never a part: a hidden temporary file in
 * the same folder, fsync, rename into place, fsync of the folder.
 *
 * With `create`, an existing file is never replaced: the temporary file is
 * hard-linked to the name (which fails with `EEXIST` when any file holds it,
 * however recently created) and then unlinked, so a file that another
 * process created after the caller's check survives. File systems without
 * hard links fall back to a check just before the rename.
 */
export async function writeFileAtomic(
  directory: string,
  name: string,
  data: string,
  options: { create?: boolean } = {},
): Promise<void> {
  const temporary = path.join(directory, `${temporaryPrefix}${randomBytes(8).toString("hex")}.tmp`);
  const target = path.join(directory, name);
  const handle = await fs.promises.open(temporary, "wx", 0o644);
  try {
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (options.create === true) await linkNew(temporary, target);
    else await fs.promises.rename(temporary, target);
  } catch (error) {
    await fs.promises.unlink(temporary).catch(() => undefined);
    throw error;
  }
  await syncDirectory(directory);
}

// Puts `temporary` at `target` only if no file is there: link() is atomic
// and never replaces. The temporary name is removed afterwards either way.
async function linkNew(temporary: string, target: string): Promise<void> {
  try {
    await fs.promises.link(temporary, target);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP" && code !== "ENOSYS") throw error;
    // No hard links here (FAT, some network and FUSE file systems).
    if (fs.existsSync(target) || isLink(target)) {
      throw Object.assign(new Error(`EEXIST: file already exists, link '${target}'`), { code: "EEXIST" });
    }
    await fs.promises.rename(temporary, target);
    return;
  }
  await fs.promises.unlink(temporary);
}

function isLink(file: string): boolean {
  try {
    return fs.lstatSync(file).isSymbolicLink();
  } catch {
    return false;
  }
}

/**
 * cleanTemporaryFiles removes the temporary files that a crash during
 * `writeFileAtomic` left behind, if older than `olderThanMs` (a younger one
 * may belong to another process writing right now). They are never loaded
 * either way: their names are hidden.
 */
export async function cleanTemporaryFiles(directory: string, olderThanMs: number, now: number): Promise<void> {
  let names: string[];
  try {
    names = await fs.promises.readdir(directory);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(temporaryPrefix) || !name.endsWith(".tmp")) continue;
    const file = path.join(directory, name);
    try {
      const stat = await fs.promises.lstat(file);
      if (stat.isFile() && now - stat.mtimeMs > olderThanMs) await fs.promises.unlink(file);
    } catch {
      // Gone already, or not ours to remove: it is ignored anyway.
    }
  }
}
