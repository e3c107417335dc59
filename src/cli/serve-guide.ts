import { isAbsolute, relative } from "node:path";
import type { CliIo } from "./common.js";
import type { DevPki } from "./dev-pki.js";

/**
 * printDevGuide prints, for development mode, where the generated
 * certificates are and ready-to-paste commands that use them: the CLI with
 * flags, the same with environment variables, and curl over the Connect
 * protocol.
 */
export function printDevGuide(io: CliIo, pki: DevPki, url: string): void {
  const path = (file: string) => shellQuote(shown(io.cwd, file));
  const program = io.program ?? "certgate";
  const flags = `--store ${url} --cert ${path(pki.admin.cert)} --key ${path(pki.admin.key)} --ca ${path(pki.ca)}`;
  const lines = [
    "",
    `Development mode: certificates ${pki.created ? "created" : "reused"} in ${shown(io.cwd, pki.dir)}`,
    "(a CA of their own; never use them in production):",
    `  CA certificate  ${path(pki.ca)}`,
    `  server          ${path(pki.server.cert)} (localhost, 127.0.0.1, ::1)`,
    `  admin           ${path(pki.admin.cert)}, key ${path(pki.admin.key)}`,
    `                  SHA-256 ${pki.certificates.admin.sha256}`,
    `  reader          ${path(pki.reader.cert)}, key ${path(pki.reader.key)}`,
    `                  SHA-256 ${pki.certificates.reader.sha256}`,
    `  example client  ${path(pki.client.cert)}, key ${path(pki.client.key)}`,
    `                  an API client certificate to upload; not stored until you do`,
    "",
    "Upload the example client certificate (as admin):",
    `  ${program} upload ${path(pki.client.cert)} --id example-client ${flags}`,
    "",
    "Or set the flags once for this shell:",
    `  export CERTGATE_STORE=${url} CERTGATE_CA=${path(pki.ca)} \\`,
    `    CERTGATE_CERT=${path(pki.admin.cert)} CERTGATE_KEY=${path(pki.admin.key)}`,
    `  ${program} list`,
    `  ${program} verify ${path(pki.client.cert)}`,
    `  ${program} delete example-client`,
    "",
    "The Connect protocol is plain HTTP with JSON, so curl works too:",
    // curl reads [ ] in a URL as a glob: an IPv6 address needs --globoff.
    `  curl${url.includes("[") ? " --globoff" : ""} --cacert ${path(pki.ca)} \\`,
    `    --cert ${path(pki.admin.cert)} --key ${path(pki.admin.key)} \\`,
    `    -H 'Content-Type: application/json' -d '{}' \\`,
    `    ${url}/certgate.v1.CertificateStoreService/ListCertificates`,
    "",
  ];
  io.stdout(`${lines.join("\n")}\n`);
}

// Paths below the working folder are shown relative to it: shorter, and the
// commands are meant to be pasted from there.
function shown(cwd: string, file: string): string {
  const rel = relative(cwd, file);
  return rel !== "" && !rel.startsWith("..") && !isAbsolute(rel) ? rel : file;
}

/**
 * shellQuote quotes a word for a POSIX shell when it needs quoting.
 */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, "'\\''")}'`;
}
