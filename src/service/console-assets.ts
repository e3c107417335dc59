import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * ConsoleAsset is one file of the built console, held in memory.
 */
export interface ConsoleAsset {
  /** The file's bytes. */
  readonly body: Buffer;
  /** Its Content-Type. */
  readonly type: string;
  /** A strong ETag of its contents. */
  readonly etag: string;
}

/**
 * ConsoleAssets is the built console: the page, the help page for browsers
 * without a role, and the hashed scripts and styles under `/assets/`.
 */
export interface ConsoleAssets {
  /** The directory the files were read from. */
  readonly directory: string;
  /** index.html, with the `{{role}}` placeholder. */
  readonly index: string;
  /** help.html, served to browsers without a certificate that has a role. */
  readonly help: ConsoleAsset;
  /** The files under assets/, by name. */
  readonly files: ReadonlyMap<string, ConsoleAsset>;
}

const types: Record<string, string> = {
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".html": "text/html; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".map": "application/json",
};

/**
 * defaultConsoleDirectory is where the built console is: `dist/console`
 * beside the compiled service, or the package's `dist/console` when the
 * service runs from its TypeScript source (tests, tsx).
 */
export function defaultConsoleDirectory(): string {
  const beside = fileURLToPath(new URL("../console/", import.meta.url));
  if (existsSync(join(beside, "index.html"))) return beside;
  return fileURLToPath(new URL("../../dist/console/", import.meta.url));
}

/**
 * loadConsoleAssets reads the built console into memory once, at start-up:
 * serving it then touches no file, and a missing build fails here, naming
 * the fix.
 */
export function loadConsoleAssets(directory = defaultConsoleDirectory()): ConsoleAssets {
  const read = (name: string) => {
    try {
      return readFileSync(join(directory, name));
    } catch (error) {
      throw new Error(
        `console: ${join(directory, name)} cannot be read (${(error as Error).message}); build it with npm run build, or turn the console off`,
        { cause: error },
      );
    }
  };
  const asset = (body: Buffer, name: string): ConsoleAsset => ({
    body,
    type: types[extname(name)] ?? "application/octet-stream",
    etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`,
  });
  const index = read("index.html").toString("utf8");
  if (!index.includes("{{role}}")) {
    throw new Error(`console: ${join(directory, "index.html")} has no role placeholder; rebuild it with npm run build`);
  }
  const files = new Map<string, ConsoleAsset>();
  const assetsDir = join(directory, "assets");
  for (const name of existsSync(assetsDir) ? readdirSync(assetsDir) : []) {
    files.set(name, asset(read(join("assets", name)), name));
  }
  return { directory, index, help: asset(read("help.html"), "help.html"), files };
}
