#!/usr/bin/env bash
# certgate on Express and Fastify next to Connect 2.2.0, installed as a user
# would: a new project with connect, connect-node, connect-express and
# connect-fastify 2.2.0, express 5, fastify 5 and certgate from its packed
# tarball. Fails on any peer-dependency warning and on a second copy of
# @connectrpc/connect, type-checks test/adapters/ and the Express and Fastify
# examples against the installed packages, then runs test/adapters/ with the
# node on PATH and with the node of each NODE_BIN_DIR given, printing one
# closing line per run: "adapters-nodeNN: N passed, N failed".
#
#   bash .ci/adapters.sh [NODE_BIN_DIR...]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The repo's own versions of the test tools, so the npm cache serves them.
version() { node -p "require('$repo/node_modules/$1/package.json').version"; }
tools=("vitest@$(version vitest)" "typescript@$(version typescript)" "tsx@$(version tsx)" "@types/node@$(version @types/node)")

cd "$repo"
tarball=$(npm pack --silent --pack-destination "$work" | tail -n 1)

cd "$work"
npm init -y >/dev/null
npm pkg set type=module
# connect-express and connect-fastify 2.2.0 declare node >= 22: on Node 20 npm
# prints EBADENGINE warnings, which are about engines, not peers.
npm install --no-audit --no-fund "./$tarball" \
  @connectrpc/connect@2.2.0 @connectrpc/connect-node@2.2.0 @bufbuild/protobuf \
  @connectrpc/connect-express@2.2.0 express@5 @types/express@5 \
  @connectrpc/connect-fastify@2.2.0 fastify@5 \
  "${tools[@]}" > install.log 2>&1 || { cat install.log >&2; exit 1; }
grep -v EBADENGINE install.log | grep -vE '^npm warn (install-scripts|\s*$)' || true
if grep -iE '^npm (warn|error)' install.log | grep -iE 'peer|eresolve' >&2; then
  echo "adapters: npm install printed peer-dependency warnings (above)" >&2
  exit 1
fi

npm ls @connectrpc/connect
copies=$(npm ls @connectrpc/connect --all --parseable | sort -u)
if [ "$(wc -l <<<"$copies")" != 1 ] || [ "$(find node_modules -path '*/@connectrpc/connect/package.json' | wc -l)" != 1 ]; then
  echo "adapters: more than one copy of @connectrpc/connect installed:" >&2
  echo "$copies" >&2
  exit 1
fi

cp "$repo"/test/adapters/* .
mkdir examples
cp "$repo"/examples/{express-server,fastify-server,dev-pki,echo-service}.ts examples/
node node_modules/typescript/bin/tsc -p tsconfig.json

results=()
status=0
for bin in "" "$@"; do
  label="adapters-node$(PATH="${bin:+$bin:}$PATH" node -p 'process.versions.node.split(".")[0]')"
  PATH="${bin:+$bin:}$PATH" node node_modules/vitest/vitest.mjs run --testTimeout=30000 \
    --reporter=default --reporter=json --outputFile.json="$label.json" || status=1
  results+=("$(node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    console.log(`${process.argv[2]}: ${r.numPassedTests} passed, ${r.numFailedTests} failed`);' "$label.json" "$label")")
done
printf '%s\n' "${results[@]}"
exit "$status"
