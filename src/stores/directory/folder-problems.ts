import * as path from "node:path";
import type { DirectoryStoreProblem } from "./types.js";

/**
 * FolderProblemsOptions configures `createFolderProblems`.
 */
export interface FolderProblemsOptions {
  /** The store's problem hook; what it throws is ignored. */
  readonly onProblem: (problem: DirectoryStoreProblem) => void;
  /** Called when a folder cannot be read, before it is reported, to stop watching it. */
  readonly dropWatch: (folder: string) => void;
}

/**
 * FolderProblems reports a folder store's problems to its hook and keeps
 * the folders that cannot be read now.
 */
export interface FolderProblems {
  /** Passes each problem to the hook. */
  report(problems: readonly DirectoryStoreProblem[]): void;
  /** Records and reports that `folder` cannot be read, once per folder and cause. */
  failed(folder: string, error: unknown): void;
  /** Forgets the failure of `folder`, read again. */
  recovered(folder: string): void;
  /** The folders that cannot be read now. */
  list(): DirectoryStoreProblem[];
}

/**
 * createFolderProblems returns `FolderProblems` with no folder failing.
 */
export function createFolderProblems(options: FolderProblemsOptions): FolderProblems {
  const { onProblem, dropWatch } = options;
  const folderProblems = new Map<string, DirectoryStoreProblem>();

  function report(problems: readonly DirectoryStoreProblem[]): void {
    for (const problem of problems) {
      try {
        onProblem(problem);
      } catch {
        // A failing hook must not stop the store.
      }
    }
  }

  return {
    report,
    // Reported once per folder and cause: a folder that goes from "parent
    // replaced by a file" to "symlink loop" is reported again, with the new code.
    failed(folder, error) {
      const code = (error as NodeJS.ErrnoException).code ?? String(error);
      if (folderProblems.get(folder)?.reason.includes(`(${code})`)) return;
      const problem: DirectoryStoreProblem = {
        path: folder,
        file: path.basename(folder),
        code: "folder_unavailable",
        reason: `the folder cannot be read (${code}); the last good set of certificates is still served`,
        time: new Date(),
      };
      folderProblems.set(folder, problem);
      dropWatch(folder);
      report([problem]);
    },
    recovered(folder) {
      folderProblems.delete(folder);
    },
    list: () => [...folderProblems.values()],
  };
}
