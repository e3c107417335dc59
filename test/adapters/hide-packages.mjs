// hidePackages makes this process behave as if the named packages were not
// installed: every import (a module resolve hook) and, with `require: true`,
// every require of them or of a subpath fails as a missing package does.
// The scripts beside it use it to check certgate's optional peers.
import Module, { register } from "node:module";

export function hidePackages(names, { require = false } = {}) {
  const hook = `
const names = ${JSON.stringify(names)};
export async function resolve(specifier, context, next) {
  if (names.some((name) => specifier === name || specifier.startsWith(name + "/"))) {
    const error = new Error("Cannot find package '" + specifier + "' (hidden by the test)");
    error.code = "ERR_MODULE_NOT_FOUND";
    throw error;
  }
  return next(specifier, context);
}`;
  register(`data:text/javascript,${encodeURIComponent(hook)}`);
  if (!require) return;
  const hidden = (specifier) => names.some((name) => specifier === name || specifier.startsWith(`${name}/`));
  const resolveFilename = Module._resolveFilename;
  Module._resolveFilename = function (request, ...rest) {
    if (hidden(request)) {
      const error = new Error(`Cannot find module '${request}' (hidden by the test)`);
      error.code = "MODULE_NOT_FOUND";
      throw error;
    }
    return resolveFilename.call(this, request, ...rest);
  };
}
