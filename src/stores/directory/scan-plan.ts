import type { StoreChange } from "../../core/store.js";
import { memberId, type DirectoryIndex } from "./directory-index.js";
import type { DirectoryStoreProblem, FileSignature } from "./types.js";

// A scan's plan: the index updates and problem changes a scan of the leaf
// folder found, applied to the index and the problem list in one step.

/**
 * ProblemRecord is a problem with a file, and the signature the file had
 * then (so that an unchanged file is not read again).
 */
export interface ProblemRecord {
  readonly signature: FileSignature | undefined;
  readonly problem: DirectoryStoreProblem;
}

/**
 * ScanUpdate is one change a scan plans for the index: an id loaded from a
 * file, or removed.
 */
export type ScanUpdate =
  | {
      readonly kind: "load";
      readonly id: string;
      readonly name: string;
      readonly signature: FileSignature;
      readonly digests: string[];
    }
  | { readonly kind: "remove"; readonly id: string };

/**
 * ScanPlan gathers a scan's updates and problems, and applies them in `finish`.
 */
export interface ScanPlan {
  load(update: ScanUpdate & { kind: "load" }): void;
  remove(id: string): void;
  problem(name: string, record: ProblemRecord): void;
  clear(name: string): void;
  finish(): ScanResult;
}

/**
 * ScanResult is what applying one scan changed.
 */
export interface ScanResult {
  readonly changes: StoreChange[];
  /** Problems found by this scan that were not known before. */
  readonly newProblems: DirectoryStoreProblem[];
}

/**
 * createScanPlan returns an empty `ScanPlan` over `index` and `problems`
 * (by file name). A direct plan applies each update at once, for the first
 * load only: nobody can call the store before it is returned, and holding
 * 100k pending updates would cost tens of MB.
 */
export function createScanPlan(index: DirectoryIndex, problems: Map<string, ProblemRecord>, direct: boolean): ScanPlan {
  function applyUpdate(update: ScanUpdate, changes: StoreChange[] | undefined): void {
    if (update.kind === "load") {
      const { previous, changed } = index.set(update.id, update.name, update.signature, update.digests);
      if (changes !== undefined) {
        for (const m of changed) changes.push({ kind: "put", id: memberId(update.id, m) });
        for (let m = update.digests.length; m < previous; m++)
          changes.push({ kind: "delete", id: memberId(update.id, m) });
      }
    } else {
      const previous = index.remove(update.id);
      for (let m = 0; m < previous && changes !== undefined; m++)
        changes.push({ kind: "delete", id: memberId(update.id, m) });
    }
  }

  function applyProblem(name: string, next: ProblemRecord | null, newProblems: DirectoryStoreProblem[]): void {
    const current = problems.get(name);
    if (next === null) {
      problems.delete(name);
    } else if (
      current !== undefined &&
      current.problem.code === next.problem.code &&
      current.problem.reason === next.problem.reason
    ) {
      problems.set(name, { signature: next.signature, problem: current.problem });
    } else {
      problems.set(name, next);
      newProblems.push(next.problem);
    }
  }

  const updates: ScanUpdate[] = [];
  const pendingProblems = new Map<string, ProblemRecord | null>();
  const newProblems: DirectoryStoreProblem[] = [];
  return {
    load(update) {
      if (direct) applyUpdate(update, undefined);
      else updates.push(update);
    },
    remove(id) {
      if (direct) applyUpdate({ kind: "remove", id }, undefined);
      else if (index.file(id) !== undefined) updates.push({ kind: "remove", id });
    },
    problem(name, record) {
      if (direct) applyProblem(name, record, newProblems);
      else pendingProblems.set(name, record);
    },
    clear(name) {
      if (problems.has(name) || pendingProblems.has(name)) {
        if (direct) applyProblem(name, null, newProblems);
        else pendingProblems.set(name, null);
      }
    },
    finish() {
      const changes: StoreChange[] = [];
      for (const update of updates) applyUpdate(update, changes);
      for (const [name, next] of pendingProblems) applyProblem(name, next, newProblems);
      return { changes, newProblems };
    },
  };
}
