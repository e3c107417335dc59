import type { DirectoryStoreProblem } from "./types.js";

/**
 * warnProblems makes the folder store's default onProblem: a process warning
 * per problem, the first 20 of each scan, so that a folder of 100k broken
 * files does not flood the log.
 */
export function warnProblems(): (problem: DirectoryStoreProblem) => void {
  let warned = 0;
  let quiet = false;
  return (p) => {
    if (warned++ < 20) {
      process.emitWarning(`certgate: skipped ${p.path}: ${p.reason}`, { code: "CERTGATE_DIRECTORY_PROBLEM" });
    } else if (!quiet) {
      quiet = true;
      process.emitWarning("certgate: more problems in the certificate folder; see store.problems()", {
        code: "CERTGATE_DIRECTORY_PROBLEM",
      });
    }
    queueMicrotask(() => {
      warned = 0;
      quiet = false;
    });
  };
}
