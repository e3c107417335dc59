#!/usr/bin/env bash
# Pastes README.md's server example into a new project that installs certgate
# from its packed tarball, runs it, and calls it with curl: the admitted call
# answers 200, the others 401; on one connection, a refused client gets the
# same 401 on every call and a GOAWAY after 100 (curl then reconnects), an
# admitted one keeps its connection.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
server_pid=""
cleanup() {
  # npx and tsx each start a child: end the server's whole process group.
  if [ -n "$server_pid" ]; then kill -- "-$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

cd "$repo"
tarball=$(npm pack --silent --pack-destination "$work" | tail -n 1)

cd "$work"
npm init -y >/dev/null
npm pkg set type=module
npm install --no-audit --no-fund --silent "./$tarball" \
  @connectrpc/connect@2.3.0 @connectrpc/connect-node@2.3.0 @bufbuild/protobuf tsx

# The code block that follows the marker, verbatim.
awk '/<!-- readme-example: server.ts -->/{m=1;next} m&&/^```ts/{c=1;next} c&&/^```/{exit} c{print}' \
  "$repo/README.md" > server.ts
test -s server.ts

cat > make-certs.mjs <<'JS'
import { writeFileSync } from "node:fs";
import { createDevCa, issueDevCertificate } from "certgate/dev";
import { parseCertificate } from "certgate";
const ca = await createDevCa();
const server = await issueDevCertificate(ca, { commonName: "localhost", dnsNames: ["localhost"], usages: ["server"] });
const client = await issueDevCertificate(ca, { commonName: "alice", usages: ["client"] });
const other = await issueDevCertificate(ca, { commonName: "mallory", usages: ["client"] });
for (const [name, c] of Object.entries({ server, client, other })) {
  writeFileSync(`${name}.pem`, c.cert);
  writeFileSync(`${name}-key.pem`, c.key);
}
writeFileSync("ca.pem", ca.cert);
// Colon-separated lower case, as people paste it.
console.log(parseCertificate(client.cert).sha1.toLowerCase().match(/../g).join(":"));
JS
thumbprint=$(node make-certs.mjs)
# A free port, so that a busy 8443 on this machine does not fail the check.
port=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')

PORT="$port" CLIENT_THUMBPRINT="$thumbprint" setsid npx --no-install tsx server.ts > server.log 2>&1 &
server_pid=$!

call() { # call CERT_NAME|none -> prints HTTP status and body
  local args=(--silent --show-error --http2 --cacert ca.pem -H 'content-type: application/json'
    -d '{"text":"hello"}' -w '\n%{http_code}' "https://localhost:$port/certgate.example.v1.EchoService/Echo")
  if [ "$1" != none ]; then args+=(--cert "$1.pem" --key "$1-key.pem"); fi
  curl "${args[@]}"
}

deadline=$((SECONDS + 60))
until call client >/dev/null 2>&1; do
  if ! kill -0 "$server_pid" 2>/dev/null || [ "$SECONDS" -gt "$deadline" ]; then
    echo "README example did not start:" >&2; cat server.log >&2; exit 1
  fi
  sleep 0.2
done

fail=0
expect() { # expect CERT_NAME STATUS TEXT
  local out status
  out=$(call "$1"); status=$(tail -n 1 <<<"$out")
  if [ "$status" = "$2" ] && grep -q "$3" <<<"$out"; then
    echo "ok: $1 -> $status"
  else
    echo "FAIL: $1 -> expected $2 with '$3', got: $out" >&2; fail=1
  fi
}
expect client 200 '"text":"hello, CN=alice"'
expect other 401 'client certificate not allowed'
expect none 401 'no client certificate presented'

# N calls in one curl: one connection, reused while the server keeps it.
# Prints each call's "STATUS NEW_CONNECTIONS BODY", one a line.
calls() { # calls CERT_NAME|none N
  local args=(--silent --show-error --http2 --cacert ca.pem -H 'content-type: application/json'
    -d '{"text":"hello"}' -w ' %{http_code} %{num_connects}\n')
  if [ "$1" != none ]; then args+=(--cert "$1.pem" --key "$1-key.pem"); fi
  local url="https://localhost:$port/certgate.example.v1.EchoService/Echo"
  for _ in $(seq "$2"); do args+=("$url"); done
  curl "${args[@]}" | awk '{ connects = $NF; status = $(NF-1); $NF = ""; $(NF-1) = ""; print status, connects, $0 }'
}
persistent() { # persistent CERT_NAME N STATUS CONNECTIONS: every call STATUS, same body, CONNECTIONS opened
  local out statuses bodies opened
  out=$(calls "$1" "$2")
  statuses=$(awk '{ print $1 }' <<<"$out" | sort -u)
  bodies=$(cut -d' ' -f3- <<<"$out" | sort -u | wc -l)
  opened=$(awk '{ n += $2 } END { print n }' <<<"$out")
  if [ "$(wc -l <<<"$out")" = "$2" ] && [ "$statuses" = "$3" ] && [ "$bodies" = 1 ] && [ "$opened" = "$4" ]; then
    echo "ok: $1 x$2 on one connection -> $3, one body, $opened connection(s)"
  else
    echo "FAIL: $1 x$2 -> expected all $3 with one body and $4 connection(s), got statuses '$statuses', $bodies bodies, $opened connections" >&2
    fail=1
  fi
}
# The 101st call needs a new connection: the server sent GOAWAY after the 100th refusal.
persistent other 150 401 2
persistent none 150 401 2
persistent client 150 200 1
exit "$fail"
