import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDevCa, issueDevCertificate, type IssuedCertificate } from "../src/dev-certificates.js";
import { thumbprintsOfDer } from "../src/core/thumbprint.js";

/**
 * BenchIdentity is one generated certificate, written to the temp folder.
 */
export interface BenchIdentity {
  /** Path of the certificate, PEM. */
  readonly certPath: string;
  /** Path of the private key, PEM. */
  readonly keyPath: string;
  /** SHA-1 thumbprint, upper-case hex. */
  readonly sha1: string;
  /** SHA-256 thumbprint, upper-case hex. */
  readonly sha256: string;
}

/**
 * BenchPki holds the certificates of one benchmark run: a development CA, the
 * server's certificate, an admitted client (alice) and a refused one (bob).
 * They are generated at run time and deleted by `close()`.
 */
export interface BenchPki {
  /** The temp folder holding the files. */
  readonly dir: string;
  /** The CA certificate, PEM path (the load generator trusts it). */
  readonly caPath: string;
  readonly server: BenchIdentity;
  /** The client certificate the echo server's store admits. */
  readonly alice: BenchIdentity;
  /** A client certificate from the same CA that the store does not admit. */
  readonly bob: BenchIdentity;
  /** The generated objects, for in-process sections. */
  readonly issued: {
    ca: IssuedCertificate;
    server: IssuedCertificate;
    alice: IssuedCertificate;
    bob: IssuedCertificate;
  };
  /** Deletes the temp folder. */
  close(): Promise<void>;
}

/**
 * createBenchPki generates the benchmark's certificates with certgate's own
 * development CA code (ECDSA P-256) into a new temp folder.
 */
export async function createBenchPki(): Promise<BenchPki> {
  const dir = await mkdtemp(join(tmpdir(), "certgate-bench-"));
  try {
    const ca = await createDevCa({ commonName: "certgate bench CA" });
    const server = await issueDevCertificate(ca, {
      commonName: "localhost",
      dnsNames: ["localhost"],
      ipAddresses: ["127.0.0.1"],
      usages: ["server"],
    });
    const alice = await issueDevCertificate(ca, { commonName: "alice", usages: ["client"] });
    const bob = await issueDevCertificate(ca, { commonName: "bob", usages: ["client"] });
    const caPath = join(dir, "ca.pem");
    await writeFile(caPath, ca.cert);
    const write = async (name: string, issued: IssuedCertificate): Promise<BenchIdentity> => {
      const certPath = join(dir, `${name}.pem`);
      const keyPath = join(dir, `${name}-key.pem`);
      await writeFile(certPath, issued.cert);
      await writeFile(keyPath, issued.key, { mode: 0o600 });
      return { certPath, keyPath, ...thumbprintsOfDer(issued.der) };
    };
    return {
      dir,
      caPath,
      server: await write("server", server),
      alice: await write("alice", alice),
      bob: await write("bob", bob),
      issued: { ca, server, alice, bob },
      close: () => rm(dir, { recursive: true, force: true }),
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
