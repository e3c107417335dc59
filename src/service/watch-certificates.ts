import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import type { SharedChangeLog, WritableCertificateStore } from "../core/store.js";
import type { WatchCertificatesRequest, WatchCertificatesResponse } from "../gen/certgate/v1/certificate_store_pb.js";
import type { WatchJournal } from "./watch-journal.js";
import type { WatchLimits } from "./watch-limits.js";
import { watchStream } from "./watch-stream.js";

/**
 * WatchCertificatesOptions configures `createWatchHandler`.
 */
export interface WatchCertificatesOptions {
  /** The store whose changes are sent. */
  readonly store: WritableCertificateStore;
  /** The journal that numbers the changes. */
  readonly journal: WatchJournal;
  /** The store's shared log, when replicas share it: a replica cut off from it ends its watches. */
  readonly sharedLog: SharedChangeLog | undefined;
  /** The limits on open watches. */
  readonly limits: WatchLimits;
  /** At most this many certificates per snapshot or change event. */
  readonly partSize: number;
  /** A heartbeat after this long without an event, in ms. */
  readonly heartbeatIntervalMs: number;
  /** Decides again for the running call before each event, throwing the refusal. */
  readonly recheck: (context: HandlerContext) => Promise<void>;
}

/**
 * createWatchHandler answers WatchCertificates: a snapshot or the changes
 * since a revision, then each change as it happens, with heartbeats, within
 * the limits on open watches, for as long as the caller stays admitted.
 */
export function createWatchHandler(
  options: WatchCertificatesOptions,
): (req: WatchCertificatesRequest, ctx: HandlerContext) => AsyncGenerator<WatchCertificatesResponse> {
  const { store, journal, sharedLog, limits, partSize, heartbeatIntervalMs, recheck } = options;
  return async function* watchCertificates(req, ctx) {
    const watch = limits.start(ctx);
    // A replica cut off from its shared store ends its watches, so
    // that mirrors move to another replica instead of trusting this
    // one's heartbeats.
    let cutOff = sharedLog?.state === "unavailable";
    const offState = sharedLog?.onState((state) => {
      if (state === "unavailable") {
        cutOff = true;
        watch.abort();
      }
    });
    if (offState !== undefined) watch.onForget(offState);
    try {
      // The gate admitted the call: a reset (HEADERS + RST_STREAM)
      // that arrived with the request is seen here, before any read.
      await new Promise((resolve) => setImmediate(resolve));
      if (!cutOff) {
        for await (const event of watchStream(req, watch.signal, {
          store,
          journal,
          partSize,
          heartbeatIntervalMs,
        })) {
          // A watch outlives the gate's decision: a reader removed from
          // the list, or whose certificate expired, hears no more.
          await recheck(ctx);
          if (cutOff || sharedLog?.state === "unavailable") break;
          yield event;
        }
      }
      if (cutOff || sharedLog?.state === "unavailable") {
        throw new ConnectError("certificate store unavailable: the database is unreachable", Code.Unavailable);
      }
    } finally {
      watch.forget();
    }
  };
}
