// fakePackage makes this process load another copy of a package: every
// import and require of `name` (and `name/package.json`) resolves to the
// CommonJS package in `dir` (its index.js and package.json), as if that
// version were installed. Tests use it to load certgate with releases of a
// peer dependency it does not support.
import Module, { register } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

export function fakePackage(name, dir) {
  const entry = join(dir, "index.js");
  const hook = `
export async function resolve(specifier, context, next) {
  if (specifier === ${JSON.stringify(name)}) {
    return { url: ${JSON.stringify(pathToFileURL(entry).href)}, format: "commonjs", shortCircuit: true };
  }
  return next(specifier, context);
}`;
  register(`data:text/javascript,${encodeURIComponent(hook)}`);
  const resolveFilename = Module._resolveFilename;
  Module._resolveFilename = function (request, ...rest) {
    if (request === name) return entry;
    if (request === `${name}/package.json`) return join(dir, "package.json");
    return resolveFilename.call(this, request, ...rest);
  };
}
