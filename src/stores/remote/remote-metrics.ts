// A remote store's metrics: how it stands with the service
// (`certgate.remote_store.state`, one series per state, 1 for the current
// one) and how far behind its copy may be (`certgate.remote_store.lag`).
import { observeGauge, observeStoreSize, storeMetricsOf, type MetricsRegistration } from "../../core/metrics.js";
import type { RemoteStoreOptions, RemoteStoreState } from "./types.js";

const states: readonly RemoteStoreState[] = ["connecting", "synced", "stale", "unavailable", "closed"];

/**
 * RemoteStoreView is what the remote store's gauges read.
 */
export interface RemoteStoreView {
  readonly state: RemoteStoreState;
  /** The copy's size (mirror mode); undefined in lookup mode. */
  size?(): number;
  /** Seconds since the copy was last known current (mirror mode); undefined in lookup mode. */
  lagSeconds?(): number;
}

/**
 * observeRemoteStore registers the gauges of a remote store, when there is a
 * meter; the returned function removes them (on `close()`). Checks the
 * options first, throwing a `TypeError` naming a malformed one.
 */
export function observeRemoteStore(options: RemoteStoreOptions, view: RemoteStoreView): () => void {
  const metrics = storeMetricsOf(options, "remote");
  if (metrics === undefined) {
    return () => {};
  }
  const { meter, attributes } = metrics;
  const registrations: (MetricsRegistration | undefined)[] = [];
  const perState = states.map((state) => Object.freeze({ ...attributes, "certgate.remote_store.state": state }));
  registrations.push(
    observeGauge(
      meter,
      "certgate.remote_store.state",
      { description: "State of a remote store: 1 for its current state, 0 for the others.", unit: "1" },
      (result) => {
        const current = view.state;
        for (let i = 0; i < states.length; i++) {
          result.observe(states[i] === current ? 1 : 0, perState[i]);
        }
      },
    ),
  );
  const { size, lagSeconds } = view;
  if (size !== undefined) {
    registrations.push(observeStoreSize(metrics, size));
  }
  if (lagSeconds !== undefined) {
    registrations.push(
      observeGauge(
        meter,
        "certgate.remote_store.lag",
        {
          description: "Time since a remote store's copy was last known current: 0 while in sync with the service.",
          unit: "s",
        },
        (result) => result.observe(lagSeconds(), attributes),
      ),
    );
  }
  return () => {
    for (const registration of registrations) {
      registration?.remove();
    }
  };
}
