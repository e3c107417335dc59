// Builds the console (console/) into dist/console with esbuild: index.html
// and help.html, and hashed, minified script and styles under assets/.
// Prints the script's size gzipped. Run by npm run build.
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import * as esbuild from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/** ConsoleBuild says what buildConsole wrote. */
export interface ConsoleBuild {
  /** The output directory. */
  readonly directory: string;
  /** The size of the script the page loads, gzipped, in bytes. */
  readonly scriptGzipBytes: number;
  /** The size of every script, chunks included, gzipped, in bytes. */
  readonly allScriptsGzipBytes: number;
}

/** buildConsole bundles the console into `outdir` (by default dist/console). */
export async function buildConsole(outdir = join(root, "dist", "console")): Promise<ConsoleBuild> {
  await rm(outdir, { recursive: true, force: true });
  await mkdir(join(outdir, "assets"), { recursive: true });
  const result = await esbuild.build({
    entryPoints: { app: join(root, "console", "main.ts"), style: join(root, "console", "style.css") },
    bundle: true,
    minify: true,
    format: "esm",
    target: ["chrome111", "firefox111", "safari16.4"],
    outdir: join(outdir, "assets"),
    entryNames: "[name]-[hash]",
    // pkijs (PKCS#12 and X.509 reading) is a chunk of its own, loaded by
    // the details and upload pages only.
    splitting: true,
    chunkNames: "chunk-[hash]",
    metafile: true,
    legalComments: "external",
    logLevel: "warning",
  });
  const outputs = Object.keys(result.metafile.outputs).map((p) => join(root, p));
  const js = outputs.find((p) => basename(p).startsWith("app-") && p.endsWith(".js"));
  const css = outputs.find((p) => p.endsWith(".css"));
  if (js === undefined || css === undefined) throw new Error("console build: no script or stylesheet written");
  const fill = (html: string) =>
    html.replaceAll("{{js}}", `/assets/${basename(js)}`).replaceAll("{{css}}", `/assets/${basename(css)}`);
  for (const page of ["index.html", "help.html"]) {
    await writeFile(join(outdir, page), fill(await readFile(join(root, "console", page), "utf8")));
  }
  const gzipped = async (file: string) => gzipSync(await readFile(file), { level: 9 }).length;
  let allScriptsGzipBytes = 0;
  for (const file of outputs.filter((p) => p.endsWith(".js"))) allScriptsGzipBytes += await gzipped(file);
  return { directory: outdir, scriptGzipBytes: await gzipped(js), allScriptsGzipBytes };
}

const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const built = await buildConsole(process.argv[2]);
  console.log(
    `console: ${relative(process.cwd(), built.directory)} (JavaScript gzipped: ${kb(built.scriptGzipBytes)} at load, ${kb(built.allScriptsGzipBytes)} in all)`,
  );
}
