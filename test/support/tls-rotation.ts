// Writes files the ways that replace them under a running process (the
// kubelet's atomic writer, an editor's rename, a plain write) and reads the
// certificate a TLS server presents.
import { X509Certificate } from "node:crypto";
import { mkdir, readdir, readlink, rename, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as tls from "node:tls";
import type { IssuedCertificate } from "../../src/dev-certificates.js";
import type { TlsFilesEvent } from "../../src/index.js";

let stamp = 0;

/**
 * atomicWrite replaces every file of a projected volume at `dir` exactly as
 * the kubelet's AtomicWriter does: the new files go into a new timestamped
 * folder `..2026_12_07_21_00_00.123456789`, a symlink `..data_tmp` to it is
 * renamed over `..data`, each visible name is a symlink `name -> ..data/name`
 * (created when missing, removed when the name is gone), and the old
 * timestamped folder is removed.
 */
export async function atomicWrite(dir: string, files: Readonly<Record<string, string | Uint8Array>>): Promise<void> {
  await mkdir(dir, { recursive: true });
  let old: string | undefined;
  try {
    old = await readlink(join(dir, "..data"));
  } catch {
    old = undefined;
  }
  stamp += 1;
  const ts = `..2026_12_07_21_00_00.${String(stamp).padStart(9, "0")}`;
  await mkdir(join(dir, ts), { mode: 0o755 });
  await Promise.all(Object.entries(files).map(([name, content]) => writeFile(join(dir, ts, name), content)));
  await symlink(ts, join(dir, "..data_tmp"));
  await rename(join(dir, "..data_tmp"), join(dir, "..data"));
  for (const name of Object.keys(files)) {
    try {
      await symlink(join("..data", name), join(dir, name));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
  }
  if (old !== undefined) {
    for (const name of await readdir(join(dir, old))) {
      if (!(name in files)) await rm(join(dir, name), { force: true });
    }
    await rm(join(dir, old), { recursive: true, force: true });
  }
}

/** renameOver writes `content` beside `path` and renames it over, as editors and `install` do. */
export async function renameOver(path: string, content: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${++stamp}`;
  await writeFile(tmp, content);
  await rename(tmp, path);
}

/** The certificate a TLS server at 127.0.0.1:`port` presents to a new connection. */
export function presentedCertificate(
  port: number,
  client?: Pick<IssuedCertificate, "cert" | "key">,
): Promise<{ fingerprint256: string; serialNumber: string; authorized?: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect(
      { host: "127.0.0.1", port, rejectUnauthorized: false, ALPNProtocols: ["h2", "http/1.1"], ...client },
      () => {
        const peer = socket.getPeerCertificate();
        socket.destroy();
        resolve({ fingerprint256: peer.fingerprint256, serialNumber: peer.serialNumber });
      },
    );
    socket.on("error", reject);
  });
}

/** The Node serial number (upper-case hex) of an issued certificate. */
export function serialOf(issued: IssuedCertificate): string {
  return new X509Certificate(issued.cert).serialNumber;
}

/** Collects the events of `createTlsFiles` and waits for the next of a kind. */
export function eventLog(): {
  readonly events: TlsFilesEvent[];
  onEvent(event: TlsFilesEvent): void;
  next(kind: TlsFilesEvent["kind"]): Promise<TlsFilesEvent>;
} {
  const events: TlsFilesEvent[] = [];
  const waiting: { kind: TlsFilesEvent["kind"]; resolve(e: TlsFilesEvent): void }[] = [];
  return {
    events,
    onEvent(event) {
      events.push(event);
      for (const w of waiting.splice(0)) {
        if (w.kind === event.kind) w.resolve(event);
        else waiting.push(w);
      }
    },
    next(kind) {
      return new Promise((resolve) => waiting.push({ kind, resolve }));
    },
  };
}
