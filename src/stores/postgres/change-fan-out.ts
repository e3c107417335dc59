import { createChangeNotifier, type LoggedChange, type ReplicaState, type StoreChange } from "../../core/store.js";

/**
 * ChangeFanOut is everyone a PostgreSQL store tells of what the database
 * did: the revision's listeners (`onChange`), the listeners of applied
 * changes (`onChanges`), of logged changes (`sharedLog.onLogged`) and of the
 * replica's state (`sharedLog.onState`). A faulty listener never keeps the
 * others from hearing.
 */
export interface ChangeFanOut {
  /** The store's revision, bumped on every change of what a decision sees. */
  readonly revision: number;
  /** Adds a listener of the revision; returns its removal. */
  onChange(listener: (revision: number) => void): () => void;
  /** Adds a listener of applied changes; returns its removal. */
  onChanges(listener: (changes: readonly StoreChange[], revision: number) => void): () => void;
  /** Adds a listener of logged changes; returns its removal. */
  onLogged(listener: (change: LoggedChange) => void): () => void;
  /** Adds a listener of the replica's state; returns its removal. */
  onState(listener: (state: ReplicaState) => void): () => void;
  /** Tells of a change applied to the copy: every logged change, and its store changes when there are any. */
  announce(logged: LoggedChange, changes: readonly StoreChange[]): void;
  /** Tells of a new replica state; connections re-check, since verdicts given before are no longer right. */
  stateChanged(state: ReplicaState): void;
  /** Bumps the revision a last time and removes every listener. */
  close(): void;
}

/**
 * createChangeFanOut returns a `ChangeFanOut` with no listeners, at revision 1.
 */
export function createChangeFanOut(): ChangeFanOut {
  const notifier = createChangeNotifier();
  const changeListeners = new Set<(changes: readonly StoreChange[], revision: number) => void>();
  const loggedListeners = new Set<(change: LoggedChange) => void>();
  const stateListeners = new Set<(state: ReplicaState) => void>();
  return {
    get revision() {
      return notifier.revision;
    },
    onChange: notifier.onChange,
    onChanges(listener) {
      changeListeners.add(listener);
      return () => {
        changeListeners.delete(listener);
      };
    },
    onLogged(listener) {
      loggedListeners.add(listener);
      return () => loggedListeners.delete(listener);
    },
    onState(listener) {
      stateListeners.add(listener);
      return () => stateListeners.delete(listener);
    },
    announce(logged, changes) {
      for (const listener of [...loggedListeners]) call(listener, logged);
      if (changes.length === 0) return;
      notifier.changed();
      for (const listener of [...changeListeners]) {
        try {
          listener(changes, notifier.revision);
        } catch {
          // A faulty listener must not keep the others from the change.
        }
      }
    },
    stateChanged(state) {
      notifier.changed();
      for (const listener of [...stateListeners]) {
        try {
          listener(state);
        } catch {
          // A faulty listener must not stop the others.
        }
      }
    },
    close() {
      notifier.changed();
      notifier.clear();
      changeListeners.clear();
      loggedListeners.clear();
      stateListeners.clear();
    },
  };
}

function call<T>(listener: (value: T) => void, value: T): void {
  try {
    listener(value);
  } catch {
    // A faulty listener must not stop the others.
  }
}
