// Development certificates for the examples: a CA, a server certificate for
// localhost and two client certificates (alice is admitted, bob is not),
// created on first use under .certgate/demo (git-ignored) and reused after.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createDevCa, issueDevCertificate, type IssuedCertificate } from "certgate/dev";

/** File names of one certificate and its key. */
export interface PemFiles {
  cert: string;
  key: string;
}

/** The example PKI: file paths, and the PEM contents. */
export interface DemoPki {
  dir: string;
  ca: string;
  files: { server: PemFiles; alice: PemFiles; bob: PemFiles };
  read(name: "server" | "alice" | "bob"): { cert: string; key: string };
  caPem: string;
}

/** ensureDemoPki creates the example certificates in `dir` unless they exist. */
export async function ensureDemoPki(dir = join(process.cwd(), ".certgate", "demo")): Promise<DemoPki> {
  const file = (name: string) => ({ cert: join(dir, `${name}.pem`), key: join(dir, `${name}-key.pem`) });
  const files = { server: file("server"), alice: file("alice"), bob: file("bob") };
  const ca = join(dir, "ca.pem");
  if (!existsSync(ca) || !existsSync(files.bob.key)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const authority = await createDevCa({ commonName: "certgate demo CA" });
    const write = (f: PemFiles, issued: IssuedCertificate) => {
      writeFileSync(f.key, issued.key, { mode: 0o600 });
      chmodSync(f.key, 0o600);
      writeFileSync(f.cert, issued.cert);
    };
    write(
      files.server,
      await issueDevCertificate(authority, {
        commonName: "localhost",
        dnsNames: ["localhost"],
        ipAddresses: ["127.0.0.1", "::1"],
        usages: ["server"],
      }),
    );
    write(files.alice, await issueDevCertificate(authority, { commonName: "alice", usages: ["client"] }));
    write(files.bob, await issueDevCertificate(authority, { commonName: "bob", usages: ["client"] }));
    // The CA key is not kept: the demo never issues more certificates.
    writeFileSync(ca, authority.cert);
  }
  return {
    dir,
    ca,
    files,
    caPem: readFileSync(ca, "utf8"),
    read: (name) => ({ cert: readFileSync(files[name].cert, "utf8"), key: readFileSync(files[name].key, "utf8") }),
  };
}
