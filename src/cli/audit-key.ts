import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { fileErrorMessage } from "./certificate-files.js";
import { CliError } from "./common.js";

/**
 * auditKeyFileHelp describes `--audit-key-file`, for the help of `serve` and `audit`.
 */
export const auditKeyFileHelp = `      --audit-key-file FILE
                           The key of the audit trail's keyed digests
                           (HMAC-SHA-256): the file's bytes, less a final
                           newline, at least 16 (such as the output of
                           openssl rand -hex 32). Keep it where the data
                           folder's writers cannot read it.`;

/**
 * readAuditKeyFile reads the audit key named by `--audit-key-file`: the
 * file's bytes less one final newline, so that a key written by
 * `openssl rand -hex 32 > FILE` and one written with `printf` are the same.
 */
export async function readAuditKeyFile(command: string, name: string, cwd: string): Promise<Uint8Array> {
  let bytes: Buffer;
  try {
    bytes = await readFile(resolve(cwd, name));
  } catch (error) {
    throw new CliError(`${command}: --audit-key-file ${name}: ${fileErrorMessage(error)}`, undefined, { cause: error });
  }
  let end = bytes.length;
  if (end > 0 && bytes[end - 1] === 0x0a) end--;
  if (end > 0 && bytes[end - 1] === 0x0d) end--;
  if (end < 16) {
    throw new CliError(`${command}: --audit-key-file ${name}: the key is ${end} bytes; give at least 16`);
  }
  return new Uint8Array(bytes.subarray(0, end));
}
