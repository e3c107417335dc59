import { Code, ConnectError, createClient } from "@connectrpc/connect";
import type { Certificate } from "../../core/certificate.js";
import { CertificateStoreService, type WatchCertificatesResponse } from "../../gen/certgate/v1/certificate_store_pb.js";
import { createChangeNotifier, type StoreVerdict } from "../../core/store.js";
import { withSyncLookup } from "../../core/sync-lookup.js";
import type { RemoteStore, RemoteStoreOptions, RemoteStoreState } from "./types.js";
import { delay, nonNegative, timerDuration, report, transportsOf } from "./options.js";
import { createMirrorTable, type MirrorTable } from "./mirror-table.js";
import { ProtocolError, releaseEvent, storeColumns, storeEntry } from "./watch-events.js";
import { createCertificateFetcher } from "./fetch-certificate.js";
import { createMirrorSync } from "./mirror-sync.js";
import { createReplicaFailover } from "./replica-failover.js";
import { clockOf } from "../../core/options.js";
import { observeRemoteStore } from "./remote-metrics.js";

// Connect (2.x, runStreamingCall) races every read of a stream against one
// promise that settles only when the call ends, and Promise.race keeps each
// read's result reachable from it until then (connect-es#1524): a watch
// would hold every event it ever received. So each event is emptied once
// applied, and a watch is ended and resumed from its revision (same
// replica, same connection, no snapshot, still in sync) after this many
// events, which bounds what is held to a few hundred bytes per event.
const eventsPerWatch = 4096;

/**
 * createMirrorStore is `createRemoteStore` in mirror mode: a local copy of
 * the service's thumbprints, fed by WatchCertificates.
 */
export function createMirrorStore(options: RemoteStoreOptions): RemoteStore {
  const clients = transportsOf(options).map((transport) => createClient(CertificateStoreService, transport));
  const syncTimeoutMs = timerDuration("syncTimeoutMs", options.syncTimeoutMs, 3000);
  const maxStaleMs = nonNegative("maxStaleMs", options.maxStaleMs, 0);
  // The replica followed, moving to the next on losing it.
  const failover = createReplicaFailover(clients.length, options);
  const idleTimeoutMs = timerDuration("idleTimeoutMs", options.idleTimeoutMs, 3000);
  const requestTimeoutMs = timerDuration("requestTimeoutMs", options.requestTimeoutMs, 3000);
  const now = clockOf(options.clock);
  const notifier = createChangeNotifier();
  const closing = new AbortController();

  // Only what a decision needs (digest, id, labels) is kept, in a compact
  // table; the DER and the rest are fetched on demand (`getCertificate`).
  let index: MirrorTable = createMirrorTable();
  // The copy being filled by a snapshot, swapped in at its last part.
  let staging: MirrorTable | undefined;
  // Whether `index` is a complete copy at `revision` of `epoch`, that is
  // whether a new watch may resume from there.
  let complete = false;
  let revision = 0n;
  let epoch = "";
  const sync = createMirrorSync({ now, maxStaleMs, changed: () => notifier.changed() });

  // Checked before the watch starts, so that a malformed option leaves nothing running.
  const unobserve = observeRemoteStore(options, {
    get state() {
      return sync.state();
    },
    size: () => index.size,
    lagSeconds: sync.lagSeconds,
  });

  function markSynced(via: "snapshot" | "resume"): void {
    sync.markSynced();
    report(options.onEvent, {
      kind: "synced",
      via,
      revision,
      epoch,
      size: index.size,
      transportIndex: failover.current,
    });
  }

  function handle(response: WatchCertificatesResponse, stream: { snapshot: boolean }): void {
    const event = response.event;
    switch (event.case) {
      case "snapshot": {
        if (event.value.first) {
          // A new snapshot means the copy is behind (or of another epoch).
          sync.loseSync(now());
          // Room for the previous copy's size, so that a big snapshot does not grow by doubling.
          staging = createMirrorTable(index.size);
          stream.snapshot = true;
        } else if (staging === undefined) {
          throw new ProtocolError("snapshot part without its first part");
        }
        for (const message of event.value.certificates) {
          storeEntry(staging, message);
        }
        storeColumns(staging, event.value);
        if (event.value.last) {
          index = staging;
          staging = undefined;
          complete = true;
          revision = response.revision;
          epoch = response.storeEpoch;
          notifier.changed();
        }
        return;
      }
      case "change": {
        if (staging !== undefined || !complete || response.storeEpoch !== epoch) {
          throw new ProtocolError("change event outside of a complete copy");
        }
        for (const id of event.value.deletedCertificateIds) {
          index.delete(id);
        }
        for (const message of event.value.upserted) {
          storeEntry(index, message);
        }
        revision = response.revision;
        // Bumped on every applied change, so that the next call of every open
        // connection asks again and a deletion takes effect at once.
        notifier.changed();
        return;
      }
      case "heartbeat": {
        if (staging !== undefined || !complete || response.storeEpoch !== epoch) {
          throw new ProtocolError("heartbeat outside of a complete copy");
        }
        revision = response.revision;
        if (!sync.synced) {
          markSynced(stream.snapshot ? "snapshot" : "resume");
        }
        return;
      }
      default:
        // An event kind added after this client was built: ignore it.
        return;
    }
  }

  async function watchOnce(): Promise<{ error: unknown; reachedSync: boolean; renewed: boolean }> {
    const controller = new AbortController();
    const stop = () => controller.abort();
    closing.signal.addEventListener("abort", stop);
    let idleTimer: NodeJS.Timeout | undefined;
    let idle = false;
    let lastMessageAt = now();
    const arm = () => {
      clearTimeout(idleTimer);
      if (idleTimeoutMs === 0) {
        return;
      }
      idleTimer = setTimeout(() => {
        idle = true;
        controller.abort(
          new ConnectError(
            `no message from the certificate store service for ${idleTimeoutMs} ms`,
            Code.DeadlineExceeded,
          ),
        );
      }, idleTimeoutMs);
      idleTimer.unref();
    };
    let error: unknown;
    let reachedSync = false;
    let renewed = false;
    let events = 0;
    const stream = { snapshot: false };
    try {
      arm();
      // A service that predates compact snapshots ignores the field and sends Certificate messages.
      const request = {
        compactSnapshot: true,
        ...(complete ? { sinceRevision: revision, storeEpoch: epoch } : {}),
      };
      const client = clients[failover.current]!;
      for await (const response of client.watchCertificates(request, { signal: controller.signal })) {
        lastMessageAt = now();
        arm();
        handle(response, stream);
        releaseEvent(response);
        reachedSync ||= sync.synced;
        // Between snapshots, any event is a point a watch resumes from.
        if (++events >= eventsPerWatch && sync.synced && staging === undefined) {
          renewed = true;
          break;
        }
      }
      if (!renewed) error = new ConnectError("the certificate store service ended the watch", Code.Unavailable);
    } catch (e) {
      error = e;
      if (e instanceof ProtocolError) {
        complete = false;
      }
    } finally {
      clearTimeout(idleTimer);
      closing.signal.removeEventListener("abort", stop);
    }
    staging = undefined;
    if (renewed) {
      // Ends the call, which lets go of what Connect held of its events.
      controller.abort();
      return { error: undefined, reachedSync, renewed };
    }
    // A silent connection was out of sync since its last message.
    sync.loseSync(idle ? lastMessageAt : now());
    return { error, reachedSync, renewed };
  }

  async function run(): Promise<void> {
    while (!sync.closed) {
      const { error, reachedSync, renewed } = await watchOnce();
      if (sync.closed) {
        return;
      }
      if (renewed) {
        failover.renewed();
        continue;
      }
      const lost = failover.current;
      const wait = failover.failed(reachedSync);
      report(options.onEvent, { kind: "disconnected", error, retryInMs: wait ?? 0, transportIndex: lost });
      if (wait !== undefined) {
        await delay(wait, closing.signal);
      }
    }
  }

  function answer(certificate: Certificate, expiresAt?: number): StoreVerdict {
    // By SHA-256 alone: the service sends both digests of every certificate,
    // so a match by SHA-1 only would be a SHA-1 collision.
    const match = index.find(certificate.sha256);
    const end = expiresAt === undefined ? {} : { expiresAt };
    if (match === undefined) {
      return { kind: "refused", reason: "not_allowed", ...end };
    }
    return {
      kind: "admitted",
      entry: { id: match.id, thumbprint: certificate.sha256.toUpperCase(), labels: match.labels },
      ...end,
    };
  }

  // The verdict from the mirror, or undefined before the first snapshot.
  function answerNow(certificate: Certificate): StoreVerdict | undefined {
    if (sync.closed) return { kind: "error", error: new Error("remote store is closed") };
    if (sync.synced) return answer(certificate);
    if (!sync.everSynced) return undefined;
    if (sync.withinStale(now())) return answer(certificate, sync.lostAt + maxStaleMs);
    return { kind: "error", error: new Error("certificate store service unreachable: the mirror is out of date") };
  }

  const running = run().catch(() => {
    // run() handles its own errors; nothing can reach here but a bug, and a
    // bug must not crash the process: the store stays fail closed.
  });

  return {
    mode: "mirror",
    getCertificate: createCertificateFetcher({
      clients,
      preferred: () => failover.current,
      timeoutMs: requestTimeoutMs,
      closing: closing.signal,
    }),
    get state(): RemoteStoreState {
      return sync.state();
    },
    get revision() {
      return notifier.revision;
    },
    // Before the first snapshot, a look-up waits for it; after, the mirror
    // answers at once.
    lookup: withSyncLookup(async (certificate: Certificate, signal: AbortSignal): Promise<StoreVerdict> => {
      if (!sync.everSynced && !sync.closed) {
        await sync.wait(syncTimeoutMs, signal);
      }
      return (
        answerNow(certificate) ?? {
          kind: "error",
          error: new Error(`not synchronised with the certificate store service within ${syncTimeoutMs} ms`),
        }
      );
    }, answerNow),
    onChange: notifier.onChange,
    async ready(timeoutMs = syncTimeoutMs) {
      await sync.wait(timeoutMs);
      if (sync.closed) {
        throw new Error("remote store is closed");
      }
      if (!sync.synced) {
        throw new Error(`not synchronised with the certificate store service within ${timeoutMs} ms`);
      }
    },
    async close() {
      if (sync.closed) {
        return;
      }
      sync.close();
      unobserve();
      closing.abort();
      notifier.changed();
      notifier.clear();
      await running;
    },
  };
}
