import { defineCommand, expectPositionals, ExitCode, usageError, type Command, type CommandOption } from "./common.js";
import { commands } from "./main.js";

const shells = ["bash", "zsh", "fish"] as const;
type Shell = (typeof shells)[number];

const help = `Usage: certgate completion bash|zsh|fish

Prints a shell completion script for certgate's commands and flags, made
from the commands themselves, so it is never out of date. Flags that take
a value complete file names.

  bash:  source <(certgate completion bash)       (add it to ~/.bashrc)
  zsh:   source <(certgate completion zsh)        (add it to ~/.zshrc,
         after compinit)
  fish:  certgate completion fish > ~/.config/fish/completions/certgate.fish

Options:
  -h, --help    Show this help
`;

/**
 * CompletionCommand is what a completion script knows of one command.
 */
interface CompletionCommand {
  readonly name: string;
  readonly summary: string;
  readonly flags: readonly CompletionFlag[];
}

interface CompletionFlag {
  readonly name: string;
  readonly short?: string;
  readonly takesValue: boolean;
  readonly repeatable: boolean;
  readonly description: string;
}

/**
 * completionCommand is `certgate completion SHELL`: a completion script for
 * bash, zsh or fish, generated from the command definitions.
 */
export const completionCommand = defineCommand(
  {
    name: "completion",
    help,
    options: {},
  },
  async ({ positionals }, io) => {
    expectPositionals("completion", positionals, "SHELL (bash, zsh or fish)", { min: 1, max: 1 });
    const shell = positionals[0] as Shell;
    if (!shells.includes(shell)) {
      throw usageError("completion", `unknown shell ${positionals[0]}; give bash, zsh or fish`);
    }
    const described: CompletionCommand[] = [];
    for (const entry of commands) {
      const command: Command = entry.name === "completion" ? completionCommand : await entry.load();
      described.push({ name: entry.name, summary: entry.summary, flags: flagsOf(command) });
    }
    io.stdout(completionScript(shell, described));
    return ExitCode.ok;
  },
);

function flagsOf(command: Command): CompletionFlag[] {
  return Object.entries(command.options).map(([name, option]: [string, CommandOption]) => ({
    name,
    ...(option.short === undefined ? {} : { short: option.short }),
    takesValue: option.type === "string",
    repeatable: option.multiple === true,
    description: describe(command.help, name),
  }));
}

// The text after the flag in the command's help: "--json   Print JSON ...".
function describe(help: string, flag: string): string {
  const line = new RegExp(`^\\s+(?:-\\w, )?--${flag}(?:[ =][^\\s]+)?\\s{2,}(\\S.*)$`, "m").exec(help);
  return (line?.[1] ?? "").replace(/\s+CERTGATE_\w+$/, "").trim();
}

/**
 * completionScript renders the completion script of `shell` for the commands.
 */
export function completionScript(shell: Shell, list: readonly CompletionCommand[]): string {
  switch (shell) {
    case "bash":
      return bashScript(list);
    case "zsh":
      return zshScript(list);
    case "fish":
      return fishScript(list);
  }
}

const longFlags = (c: CompletionCommand) => c.flags.map((f) => `--${f.name}`);

function bashScript(list: readonly CompletionCommand[]): string {
  const names = list.map((c) => c.name).join(" ");
  const cases = list
    .map((c) => {
      const valued = c.flags
        .filter((f) => f.takesValue)
        .flatMap((f) => [`--${f.name}`, ...(f.short ? [`-${f.short}`] : [])]);
      return `    ${c.name})\n      flags="${longFlags(c).join(" ")}"\n      valued="${valued.join(" ")}"\n      ;;`;
    })
    .join("\n");
  return `# certgate completion for bash: source <(certgate completion bash)
_certgate() {
  local cur prev flags valued
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "${names} help --help --version" -- "$cur"))
    return
  fi
  case "\${COMP_WORDS[1]}" in
${cases}
    help)
      COMPREPLY=($(compgen -W "${names}" -- "$cur"))
      return
      ;;
    *)
      return
      ;;
  esac
  if [ "\${COMP_WORDS[1]}" = completion ] && [[ "$cur" != -* ]]; then
    COMPREPLY=($(compgen -W "bash zsh fish" -- "$cur"))
    return
  fi
  case " $valued " in
    *" $prev "*)
      COMPREPLY=($(compgen -f -- "$cur"))
      return
      ;;
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -o filenames -o bashdefault -F _certgate certgate
`;
}

// zsh descriptions sit in [...] and '...': escape what would end them.
const zshText = (text: string) => text.replace(/([[\]:\\])/g, "\\$1").replace(/'/g, "'\\''");

function zshScript(list: readonly CompletionCommand[]): string {
  const described = list.map((c) => `    '${c.name}:${zshText(c.summary)}'`).join("\n");
  const cases = list
    .map((c) => {
      const specs = c.flags.map((f) => {
        const repeat = f.repeatable ? "*" : "";
        const value = f.takesValue ? `:${f.name}:_files` : "";
        return `        '${repeat}--${f.name}[${zshText(f.description)}]${value}'`;
      });
      const positional = c.name === "completion" ? "'1:shell:(bash zsh fish)'" : "'*:file:_files'";
      return `    ${c.name})\n      _arguments -s \\\n${specs.join(" \\\n")} \\\n        ${positional}\n      ;;`;
    })
    .join("\n");
  return `#compdef certgate
# certgate completion for zsh: source <(certgate completion zsh), after compinit
_certgate() {
  local -a commands
  commands=(
${described}
  )
  if (( CURRENT == 2 )); then
    _describe -t commands 'certgate command' commands
    return
  fi
  local command=$words[2]
  shift words
  (( CURRENT-- ))
  case $command in
${cases}
    help)
      _describe -t commands 'certgate command' commands
      ;;
  esac
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  _certgate "$@"
else
  compdef _certgate certgate
fi
`;
}

const fishText = (text: string) => `'${text.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;

function fishScript(list: readonly CompletionCommand[]): string {
  const names = list.map((c) => c.name).join(" ");
  const lines = [
    "# certgate completion for fish: certgate completion fish > ~/.config/fish/completions/certgate.fish",
    "complete -c certgate -e",
    ...list.map((c) => `complete -c certgate -n __fish_use_subcommand -f -a ${c.name} -d ${fishText(c.summary)}`),
    `complete -c certgate -n __fish_use_subcommand -f -a help -d 'Show the help of a command'`,
    `complete -c certgate -n '__fish_seen_subcommand_from help' -f -a '${names}'`,
    `complete -c certgate -n '__fish_seen_subcommand_from completion' -f -a 'bash zsh fish'`,
    ...list.flatMap((c) =>
      c.flags.map((f) => {
        const short = f.short === undefined ? "" : ` -s ${f.short}`;
        const value = f.takesValue ? " -r -F" : "";
        return `complete -c certgate -n '__fish_seen_subcommand_from ${c.name}' -l ${f.name}${short}${value} -d ${fishText(f.description)}`;
      }),
    ),
  ];
  return `${lines.join("\n")}\n`;
}
