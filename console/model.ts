import { type Client, ConnectError } from "@connectrpc/connect";
import type { Certificate, CertificateStoreService } from "../src/gen/certgate/v1/certificate_store_pb.js";

/**
 * CertificateModel holds every stored certificate, loaded page by page
 * with ListCertificates and kept current with WatchCertificates: a change
 * made elsewhere shows without a reload.
 */
export interface CertificateModel {
  /** The certificates, by id. */
  readonly byId: ReadonlyMap<string, Certificate>;
  /** Whether the first load finished. */
  readonly loaded: boolean;
  /** The last error of loading or watching, if any. */
  readonly error: string | undefined;
  /** Calls `listener` after every change; returns the unsubscribe. */
  subscribe(listener: () => void): () => void;
  /** Starts loading and watching, once. */
  start(): void;
  /** Removes one certificate at once (after this browser deleted it). */
  forget(id: string): void;
}

const silenceMs = 60_000;

/**
 * createCertificateModel makes the console's one certificate model over
 * `store` (api.ts's client). A watch call is renewed, from its revision,
 * after `eventsPerWatch` events (see watch()); by default, 1024.
 */
export function createCertificateModel(
  store: Client<typeof CertificateStoreService>,
  eventsPerWatch = 1024,
): CertificateModel {
  const byId = new Map<string, Certificate>();
  const listeners = new Set<() => void>();
  let loaded = false;
  let error: string | undefined;
  let started = false;
  const changed = () => {
    for (const listener of listeners) listener();
  };

  async function load(): Promise<void> {
    const seen = new Set<string>();
    let pageToken = "";
    do {
      const page = await store.listCertificates({ pageSize: 1000, pageToken });
      for (const c of page.certificates) {
        byId.set(c.certificateId, c);
        seen.add(c.certificateId);
      }
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    for (const id of [...byId.keys()]) if (!seen.has(id)) byId.delete(id);
    loaded = true;
    error = undefined;
    changed();
  }

  // Watch events carry ids, thumbprints and labels only: the rest of a new
  // certificate comes with GetCertificate.
  async function fetchOne(id: string): Promise<void> {
    try {
      const { certificate } = await store.getCertificate({ certificateId: id });
      if (certificate !== undefined) byId.set(id, { ...certificate, der: new Uint8Array() });
    } catch (e) {
      if (e instanceof ConnectError && e.code === 5) byId.delete(id);
    }
    changed();
  }

  async function watch(): Promise<void> {
    let since = 0n;
    let epoch = "";
    for (;;) {
      // The server sends a heartbeat at least every 10 s by default: a watch
      // silent for a minute is a dead connection, and is opened again.
      const abort = new AbortController();
      let timer = setTimeout(() => abort.abort(), silenceMs);
      let renew = false;
      try {
        let snapshot: Set<string> | undefined;
        let events = 0;
        for await (const event of store.watchCertificates(
          { sinceRevision: since, storeEpoch: epoch },
          { signal: abort.signal, timeoutMs: 0 },
        )) {
          clearTimeout(timer);
          timer = setTimeout(() => abort.abort(), silenceMs);
          since = event.revision;
          epoch = event.storeEpoch;
          const e = event.event;
          if (e.case === "snapshot") {
            if (e.value.first) snapshot = new Set();
            for (const c of e.value.certificates) {
              snapshot?.add(c.certificateId);
              if (!byId.has(c.certificateId)) void fetchOne(c.certificateId);
            }
            if (e.value.last && snapshot !== undefined) {
              for (const id of [...byId.keys()]) if (!snapshot.has(id)) byId.delete(id);
              snapshot = undefined;
              changed();
            }
          } else if (e.case === "change") {
            for (const id of e.value.deletedCertificateIds) byId.delete(id);
            for (const c of e.value.upserted) void fetchOne(c.certificateId);
            changed();
          }
          // Connect's streaming client keeps every event of a call until the
          // call ends (connect-es#1524): a console left open for days would
          // hold each heartbeat and change. The watch is renewed from its
          // revision (no snapshot) every so many events.
          if (++events >= eventsPerWatch && snapshot === undefined) {
            renew = true;
            break;
          }
        }
      } catch (e) {
        error = `live updates paused: ${abort.signal.aborted ? "no word from the server for a minute" : e instanceof Error ? e.message : String(e)}`;
        changed();
      } finally {
        clearTimeout(timer);
        if (renew) abort.abort();
      }
      if (renew) continue;
      // Reconnect after a pause; the watch resumes from the last revision.
      await new Promise((resolve) => setTimeout(resolve, 3000));
      error = undefined;
    }
  }

  return {
    byId,
    get loaded() {
      return loaded;
    },
    get error() {
      return error;
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    start() {
      if (started) return;
      started = true;
      load().then(
        () => void watch(),
        (e: unknown) => {
          error = e instanceof Error ? e.message : String(e);
          loaded = true;
          changed();
        },
      );
    },
    forget(id) {
      byId.delete(id);
      changed();
    },
  };
}
