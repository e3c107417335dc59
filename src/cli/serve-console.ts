import { readFile } from "node:fs/promises";
import { isAbsolute, relative } from "node:path";
import type { CliIo } from "./common.js";
import { CliError, errorMessage } from "./common.js";
import type { DevPki } from "./dev-pki.js";
import { writeDevP12 } from "./dev-p12.js";
import { shellQuote } from "./serve-guide.js";

/**
 * printConsoleGuide prints where the console is. In development mode it
 * first writes `admin.p12` and `reader.p12` for importing into a browser
 * and prints their password.
 */
export async function printConsoleGuide(io: CliIo, url: string, dev: DevPki | undefined): Promise<void> {
  if (dev === undefined) {
    io.stdout(`console on ${url}/ (for admin and reader client certificates)\n`);
    return;
  }
  let p12;
  try {
    p12 = await writeDevP12(dev.dir, dev, (path) => readFile(path, "utf8"));
  } catch (error) {
    throw new CliError(`cannot write the development PKCS#12 files in ${dev.dir}: ${errorMessage(error)}`, undefined, {
      cause: error,
    });
  }
  const shown = (file: string) => {
    const rel = relative(io.cwd, file);
    return shellQuote(rel !== "" && !rel.startsWith("..") && !isAbsolute(rel) ? rel : file);
  };
  io.stdout(
    [
      `Console: ${url}/`,
      `  Import ${shown(p12.admin)} (or ${shown(p12.reader)} to look only) into your browser's personal certificates, password ${p12.password}, and trust ${shown(dev.ca)} for websites (or accept the warning).`,
      "",
    ].join("\n"),
  );
}
