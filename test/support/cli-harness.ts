// Runs the certgate command line as real processes for test/cli*.test.ts.
import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { expect } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { parseCertificate } from "../../src/core/certificate.js";
import { createDevCa, issueDevCertificate, type IssuedCertificate } from "../../src/dev-certificates.js";
import { createTestPki, waitFor, type TestPki } from "./harness.js";
import { watchChild } from "./watched-child.js";

// The CLI runs as a real process: the built dist/cli.js when dist/ is at
// least as new as every source file (CI builds it in `npm ci`), else the
// source through tsx, which costs about three times as long per start.
export const repo = fileURLToPath(new URL("../..", import.meta.url));
// CERTGATE_TEST_CLI=dist or =src chooses.
const useDist = process.env.CERTGATE_TEST_CLI === undefined ? freshDist() : process.env.CERTGATE_TEST_CLI === "dist";
export const cliArgs = useDist
  ? [join(repo, "dist", "cli.js")]
  : ["--import", pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href, join(repo, "src", "cli.ts")];

function freshDist(): boolean {
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory()
        ? walk(join(dir, e.name))
        : e.name.endsWith(".ts") && !e.name.endsWith(".d.ts")
          ? [join(dir, e.name)]
          : [],
    );
  try {
    return walk(join(repo, "src")).every((file) => {
      const built = join(repo, "dist", relative(join(repo, "src"), file)).replace(/\.ts$/, ".js");
      return statSync(built).mtimeMs >= statSync(file).mtimeMs;
    });
  } catch {
    return false;
  }
}
const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CERTGATE_")));

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

const children = new Set<ChildProcess>();

/** Kills every certgate process a test left running. */
export function killAll(): void {
  for (const child of children) child.kill("SIGKILL");
}

/** Starts certgate as a process. */
export function spawnCli(args: readonly string[], env: Record<string, string> = {}, cwd = repo): ChildProcess {
  const child = spawn(process.execPath, [...cliArgs, ...args], {
    cwd,
    env: { ...baseEnv, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  child.on("exit", () => children.delete(child));
  return child;
}

/** Runs certgate to its end. */
export function run(args: readonly string[], env: Record<string, string> = {}, cwd = repo): Promise<Result> {
  const child = spawnCli(args, env, cwd);
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * Runs certgate in this process, for what does not need a process of its
 * own (help texts, command-line mistakes): the same code, without the cost
 * of a start.
 */
export async function runHere(args: readonly string[], env: Record<string, string> = {}, cwd = repo): Promise<Result> {
  let stdout = "";
  let stderr = "";
  const code = await runCli(args, {
    stdout: (text) => void (stdout += text),
    stderr: (text) => void (stderr += text),
    env,
    cwd,
    signal: new AbortController().signal,
  });
  return { code, stdout, stderr };
}

/** A failure: the given exit code and exactly one line on stderr, no stack trace. */
export function expectFailure(result: Result, code: number, message: string | RegExp): void {
  expect(result.code, result.stderr).toBe(code);
  const lines = result.stderr.split("\n").filter((l) => l !== "" && !l.startsWith("certgate: note:"));
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^certgate: /);
  if (typeof message === "string") expect(lines[0]).toBe(message);
  else expect(lines[0]).toMatch(message);
}

/** A running `certgate serve`. */
export interface Serve {
  child: ChildProcess;
  url: string;
  output(): { stdout: string; stderr: string };
  /** Sends the signal and resolves with the exit code (or signal name). */
  stop(signal?: NodeJS.Signals): Promise<number | string | null>;
}

/**
 * Starts `certgate serve --listen 127.0.0.1:0 ...` with `env` added to the
 * environment (in `cwd`, by default the repository) and waits for its
 * "listening on" line.
 */
export async function startServe(
  args: readonly string[],
  env: Record<string, string> = {},
  cwd = repo,
): Promise<Serve> {
  const child = spawnCli(["serve", "--listen", "127.0.0.1:0", ...args], env, cwd);
  const watched = watchChild(child);
  const stdout = () => watched.output().stdout;
  await waitFor(
    () => watched.exited() || /listening on https:\/\/\S+/.test(stdout()),
    "certgate serve to listen",
    30_000,
  );
  const url = /listening on (https:\/\/\S+)/.exec(stdout())?.[1];
  if (url === undefined) throw new Error(`certgate serve did not start:\n${watched.output().stderr}`);
  return {
    child,
    url,
    output: () => {
      const { stdout, stderr } = watched.output();
      return { stdout, stderr };
    },
    stop(signal = "SIGTERM") {
      if (!watched.exited()) child.kill(signal);
      return watched.exit;
    },
  };
}

/** The certificates and files of one CLI test file. */
export interface CliFixture {
  /** A temporary folder holding the files; remove it in afterAll. */
  tmp: string;
  pki: TestPki;
  /** Client certificates issued by `pki.ca` for the admin and reader roles. */
  admin: IssuedCertificate;
  reader: IssuedCertificate;
  /** A client certificate from another CA. */
  foreign: IssuedCertificate;
  /**
   * Absolute paths by file name: NAME.pem and NAME-key.pem for server, admin,
   * reader, alice, bob and foreign; ca.pem, alice.der, bob.der, bundle.pem
   * (alice's certificate, key and the CA), junk.der.
   */
  files: Record<string, string>;
}

/** Generates the certificates of a CLI test file and writes them to a new temporary folder. */
export async function createCliFixture(): Promise<CliFixture> {
  const tmp = await mkdtemp(join(tmpdir(), "certgate-cli-"));
  const pki = await createTestPki();
  const admin = await issueDevCertificate(pki.ca, { commonName: "admin", usages: ["client"] });
  const reader = await issueDevCertificate(pki.ca, { commonName: "reader", usages: ["client"] });
  const foreign = await issueDevCertificate(await createDevCa({ commonName: "foreign CA" }), {
    commonName: "foreign admin",
    usages: ["client"],
  });
  const files: Record<string, string> = {};
  const write = (name: string, text: string | Uint8Array) => {
    files[name] = join(tmp, name);
    return writeFile(files[name], text);
  };
  for (const [name, issued] of Object.entries({
    server: pki.server,
    admin,
    reader,
    alice: pki.alice,
    bob: pki.bob,
    foreign,
  })) {
    await write(`${name}.pem`, issued.cert);
    await write(`${name}-key.pem`, issued.key);
  }
  await write("ca.pem", pki.ca.cert);
  await write("alice.der", pki.alice.der);
  await write("bob.der", pki.bob.der);
  await write("bundle.pem", pki.alice.cert + pki.alice.key + pki.ca.cert);
  await write("junk.der", new Uint8Array([0x30, 0x82, 0x01, 0x00, 1, 2, 3, 4, 5]));
  return { tmp, pki, admin, reader, foreign, files };
}

/** serveTlsArgs are `certgate serve`'s --tls-cert and --tls-key with the fixture's server files. */
export function serveTlsArgs(fx: Pick<CliFixture, "files">): string[] {
  return ["--tls-cert", fx.files["server.pem"]!, "--tls-key", fx.files["server-key.pem"]!];
}

/**
 * serveAccessArgs are `serveTlsArgs`, and --admin and --reader naming the
 * fixture's admin and reader by SHA-256.
 */
export function serveAccessArgs(fx: CliFixture): string[] {
  return [
    ...serveTlsArgs(fx),
    ...["--admin", parseCertificate(fx.admin.cert).sha256, "--reader", parseCertificate(fx.reader.cert).sha256],
  ];
}

/**
 * clientEnv is the environment with which the CLI calls the store service
 * at `url` as `who`, one of the fixture's names (admin, reader, foreign, ...).
 */
export function clientEnv(fx: Pick<CliFixture, "files">, who: string, url: string): Record<string, string> {
  return {
    CERTGATE_STORE: url,
    CERTGATE_CERT: fx.files[`${who}.pem`]!,
    CERTGATE_KEY: fx.files[`${who}-key.pem`]!,
    CERTGATE_CA: fx.files["ca.pem"]!,
  };
}
