// certgate completion bash|zsh|fish: generated from the command definitions,
// checked by each shell itself.
import { execFile, execFileSync } from "node:child_process";
import { readFile, rm, writeFile } from "node:fs/promises";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { commands } from "../../src/cli/main.js";
import { expectFailure, repo, run, runHere } from "../support/cli-harness.js";

function has(shell: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${shell}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
const shells = { bash: has("bash"), zsh: has("zsh"), fish: has("fish") };
if (process.env.CI === "true" && !(shells.bash && shells.zsh && shells.fish)) {
  throw new Error("bash, zsh and fish are required under CI=true (apt-get install zsh fish)");
}

function shell(program: string, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(program, args, { env: { PATH: process.env.PATH ?? "", HOME: tmp } }, (error, stdout, stderr) =>
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr }),
    ),
  );
}

let tmp: string;
const scripts: Record<string, string> = {};
let flags: Record<string, string[]>;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "certgate-completion-"));
  for (const name of ["bash", "zsh", "fish"]) {
    const result = await run(["completion", name]);
    expect(result.code, result.stderr).toBe(0);
    scripts[name] = join(tmp, `certgate.${name}`);
    await writeFile(scripts[name], result.stdout);
  }
  flags = {};
  for (const entry of commands) flags[entry.name] = Object.keys((await entry.load()).options);
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe("certgate completion", () => {
  it("lists every command and every flag of each, for every shell", async () => {
    expect(Object.keys(flags)).toEqual(expect.arrayContaining(["serve", "authz", "audit", "migrate", "completion"]));
    for (const name of ["bash", "zsh", "fish"]) {
      const text = await readFile(scripts[name]!, "utf8");
      for (const [command, names] of Object.entries(flags)) {
        expect(text, `${name}: ${command}`).toContain(command);
        for (const flag of names) {
          const expected = name === "fish" ? `'__fish_seen_subcommand_from ${command}' -l ${flag}` : `--${flag}`;
          expect(text, `${name}: ${command} --${flag}`).toContain(expected);
        }
      }
    }
  });

  it("refuses an unknown shell", async () => {
    expectFailure(await runHere(["completion", "tcsh"]), 2, /^certgate: unknown shell tcsh; give bash, zsh or fish/);
  });

  it.skipIf(!shells.bash)("completes commands and flags in bash", async () => {
    const complete = (words: string[]) =>
      shell("bash", [
        "-c",
        `source ${scripts.bash}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _certgate; printf '%s\\n' "\${COMPREPLY[@]}"`,
      ]);
    expect((await complete(["certgate", "up"])).stdout).toBe("upload\n");
    expect((await complete(["certgate", "upload", "--pass"])).stdout).toBe("--password-file\n");
    expect((await complete(["certgate", "list", "--exp"])).stdout).toBe("--expiring-within\n");
    expect((await complete(["certgate", "completion", "fi"])).stdout).toBe("fish\n");
    // A flag's value completes file names.
    const files = await complete(["certgate", "upload", "--cert", join(repo, "package.js")]);
    expect(files.stdout).toBe(`${join(repo, "package.json")}\n`);
  });

  it.skipIf(!shells.fish)("completes commands and flags in fish", async () => {
    const complete = (line: string) => shell("fish", ["-c", `source ${scripts.fish}; complete -C '${line}'`]);
    expect((await complete("certgate mig")).stdout).toMatch(/^migrate\tCopy a folder store into PostgreSQL\n$/);
    expect((await complete("certgate upload --password")).stdout).toMatch(/^--password-file\tThe password of PKCS#12/);
    expect((await complete("certgate audit --ver")).stdout).toMatch(/^--verify\t/);
  });

  it.skipIf(!shells.zsh)("loads in zsh and registers for certgate", async () => {
    const result = await shell("zsh", [
      "-c",
      `autoload -U compinit && compinit -u -D && source ${scripts.zsh} && print -r -- $_comps[certgate]`,
    ]);
    expect(result.stderr).toBe("");
    expect(result.stdout).toBe("_certgate\n");
  });
});

describe("docs/cli.md", () => {
  it("lists every command of certgate", async () => {
    const text = await readFile(join(repo, "docs", "cli.md"), "utf8");
    const list = /```\n(certgate serve[\s\S]*?)```/.exec(text)?.[1] ?? "";
    for (const entry of commands) expect(list, entry.name).toMatch(new RegExp(`^certgate ${entry.name} `, "m"));
  });
});
