import { create } from "@bufbuild/protobuf";
import type { StoredCertificate, WritableCertificateStore } from "../core/store.js";
import {
  ChangeSchema,
  HeartbeatSchema,
  LabelSetSchema,
  SnapshotSchema,
  WatchCertificatesResponseSchema,
  type Certificate as CertificateMessage,
  type WatchCertificatesRequest,
  type WatchCertificatesResponse,
} from "../gen/certgate/v1/certificate_store_pb.js";
import { watchCertificateMessage } from "./convert.js";
import type { JournalEntry, WatchJournal } from "./watch-journal.js";

/**
 * WatchStreamOptions configures `watchStream`.
 */
export interface WatchStreamOptions {
  readonly store: WritableCertificateStore;
  readonly journal: WatchJournal;
  /** At most this many certificates (or ids) per event. */
  readonly partSize: number;
  /** A heartbeat after this long without an event. */
  readonly heartbeatIntervalMs: number;
}

/**
 * watchStream answers one WatchCertificates call: a catch-up (a snapshot, or
 * the missed changes of a resumed watch), a heartbeat that marks the end of
 * the catch-up, then every journal entry as it comes, with heartbeats when
 * the store is quiet. A watcher that falls behind the journal's memory gets a
 * new snapshot instead of an ever-growing backlog: the generator only reads
 * ahead as fast as the client takes the events.
 */
export async function* watchStream(
  request: WatchCertificatesRequest,
  signal: AbortSignal,
  options: WatchStreamOptions,
): AsyncGenerator<WatchCertificatesResponse> {
  const { journal } = options;
  const includeDer = request.includeDer;
  // Columns carry no DER: a watcher asking for both gets Certificate messages.
  const compact = request.compactSnapshot && !includeDer;
  const since = request.sinceRevision;
  let cursor = 0;
  // Whether the client's copy has been complete since the last heartbeat.
  let announced = false;
  const resumable = request.storeEpoch === journal.epoch && since > 0n && since <= BigInt(Number.MAX_SAFE_INTEGER);
  if (resumable && journal.since(Number(since)) !== undefined) {
    cursor = Number(since);
  } else {
    // A shared store's journal reads what it no longer keeps in memory.
    const resumed = resumable ? await journal.resume?.(Number(since)) : undefined;
    if (resumed === undefined) {
      cursor = yield* snapshot(options, includeDer, compact, signal);
    } else {
      for (const entry of resumed.entries) {
        if (entry.kind === "change") yield* change(entry, journal.epoch, includeDer, options.partSize);
      }
      cursor = resumed.through;
    }
  }
  while (!signal.aborted) {
    const entries = journal.since(cursor);
    if (entries === undefined) {
      // Fell behind what the journal keeps: start over.
      cursor = yield* snapshot(options, includeDer, compact, signal);
      announced = false;
      continue;
    }
    if (entries.length === 0) {
      if (!announced) {
        announced = true;
        yield event(cursor, journal.epoch, heartbeat());
        continue;
      }
      const woke = await journal.wait(cursor, signal, options.heartbeatIntervalMs);
      if (woke === "timeout") {
        yield event(cursor, journal.epoch, heartbeat());
      }
      continue;
    }
    for (const entry of coalesce(entries, options.partSize)) {
      if (signal.aborted) {
        return;
      }
      if (entry.kind === "reset") {
        cursor = yield* snapshot(options, includeDer, compact, signal);
        announced = false;
        break;
      }
      yield* change(entry, journal.epoch, includeDer, options.partSize);
      cursor = entry.revision;
    }
  }
}

// Sends the whole store in parts, each at the journal revision read before
// listing started: every change that the listing may have missed has a later
// revision and follows as a change event (applying it twice is harmless).
//
// One part is read at a time, only once the client took the previous one
// (the generator resumes when the adapter wrote the event and the stream
// drained), with one certificate more than a part to know whether it is the
// last: a paused watch holds one part, whatever the store's size, and a
// cancelled one reads nothing more.
async function* snapshot(
  options: WatchStreamOptions,
  includeDer: boolean,
  compact: boolean,
  signal: AbortSignal,
): AsyncGenerator<WatchCertificatesResponse, number> {
  const { store, journal, partSize } = options;
  const revision = journal.head;
  let after: string | undefined;
  for (let first = true; ; first = false) {
    if (signal.aborted) {
      return revision;
    }
    const page = await store.list({ after, limit: partSize + 1, withoutDer: !includeDer });
    const last = page.length <= partSize;
    const part = last ? page : page.slice(0, partSize);
    after = part.length === 0 ? after : (part[part.length - 1] as StoredCertificate).id;
    const message = event(revision, journal.epoch, {
      case: "snapshot",
      value: compact
        ? compactPart(part, first, last)
        : create(SnapshotSchema, {
            certificates: part.map((c) => watchCertificateMessage(c, includeDer)),
            first,
            last,
          }),
    });
    page.length = 0;
    yield message;
    if (last) {
      return revision;
    }
  }
}

// One snapshot part in columns: ids, binary digests, and label sets given
// once per part (a fleet has few distinct ones).
function compactPart(part: readonly StoredCertificate[], first: boolean, last: boolean) {
  const ids = new Array<string>(part.length);
  const digests = new Uint8Array(part.length * 32);
  const digestView = Buffer.from(digests.buffer, digests.byteOffset, digests.byteLength);
  const indexes = new Array<number>(part.length);
  const labelSets: Record<string, string>[] = [];
  const setIndex = new Map<string, number>();
  for (let i = 0; i < part.length; i++) {
    const c = part[i] as StoredCertificate;
    ids[i] = c.id;
    digestView.write(c.sha256, i * 32, 32, "hex");
    const keys = Object.keys(c.labels);
    if (keys.length === 0) {
      indexes[i] = 0;
      continue;
    }
    const key = JSON.stringify(keys.sort().map((k) => [k, c.labels[k]]));
    let index = setIndex.get(key);
    if (index === undefined) {
      labelSets.push({ ...c.labels });
      index = labelSets.length;
      setIndex.set(key, index);
    }
    indexes[i] = index;
  }
  return create(SnapshotSchema, {
    first,
    last,
    certificateIds: ids,
    sha256Digests: digests,
    labelSetIndexes: indexes,
    labelSets: labelSets.map((labels) => create(LabelSetSchema, { labels })),
  });
}

type ChangeEntry = Extract<JournalEntry, { kind: "change" }>;

// Merges runs of consecutive small change entries into one, at the last
// one's revision, so that a watcher behind by a burst (10,000 deletions one
// by one) gets a few events of up to `partSize` ids rather than one event,
// one encoding and one write per revision: most of a replica's work per
// watcher. A client applies a Change's deletions before its upserts, so an
// entry deleting an id that an earlier entry of the run put (put then
// delete) starts a new run; a later put of the same id replaces the earlier.
function* coalesce(entries: readonly JournalEntry[], partSize: number): Generator<JournalEntry> {
  let run: ChangeEntry[] = [];
  let size = 0;
  let put = new Set<string>();
  function* flush(): Generator<JournalEntry> {
    if (run.length === 1) yield run[0]!;
    else if (run.length > 1) yield merge(run);
    run = [];
    size = 0;
    put = new Set();
  }
  for (const entry of entries) {
    if (entry.kind !== "change") {
      yield* flush();
      yield entry;
      continue;
    }
    const weight = entry.upserted.length + entry.deleted.length;
    if (size + weight > partSize || entry.deleted.some((id) => put.has(id))) yield* flush();
    run.push(entry);
    size += weight;
    for (const c of entry.upserted) put.add(c.id);
  }
  yield* flush();
}

function merge(run: readonly ChangeEntry[]): ChangeEntry {
  const upserted = new Map<string, StoredCertificate>();
  const deleted: string[] = [];
  for (const entry of run) {
    deleted.push(...entry.deleted);
    for (const c of entry.upserted) upserted.set(c.id, c);
  }
  return { kind: "change", revision: run[run.length - 1]!.revision, upserted: [...upserted.values()], deleted };
}

// Every watcher of a journal entry is sent the same events: they are made
// once per entry (with and without DER), and being the same objects, a writer
// may encode them once too (see grpc-watch-handler.ts). Nothing mutates an
// event once made.
const madeEvents = new WeakMap<
  ChangeEntry,
  { der?: WatchCertificatesResponse[]; plain?: WatchCertificatesResponse[] }
>();

function change(
  entry: ChangeEntry,
  epoch: string,
  includeDer: boolean,
  partSize: number,
): readonly WatchCertificatesResponse[] {
  let made = madeEvents.get(entry);
  if (made === undefined) {
    made = {};
    madeEvents.set(entry, made);
  }
  const key = includeDer ? "der" : "plain";
  made[key] ??= [...changeParts(entry, epoch, includeDer, partSize)];
  return made[key];
}

// Sends one entry, in parts of at most `partSize` certificates and ids: all
// but the last part carry the previous revision, so that a client resuming
// from one of them receives the whole entry again.
function* changeParts(
  entry: ChangeEntry,
  epoch: string,
  includeDer: boolean,
  partSize: number,
): Generator<WatchCertificatesResponse> {
  const upserted: CertificateMessage[] = entry.upserted.map((c) => watchCertificateMessage(c, includeDer));
  const deleted = entry.deleted;
  const total = upserted.length + deleted.length;
  let offset = 0;
  do {
    const end = Math.min(offset + partSize, total);
    const u = upserted.slice(Math.min(offset, upserted.length), Math.min(end, upserted.length));
    const d = deleted.slice(Math.max(0, offset - upserted.length), Math.max(0, end - upserted.length));
    const revision = end === total ? entry.revision : entry.revision - 1;
    yield event(revision, epoch, {
      case: "change",
      value: create(ChangeSchema, { upserted: u, deletedCertificateIds: d }),
    });
    offset = end;
  } while (offset < total);
}

function heartbeat(): WatchCertificatesResponse["event"] {
  return { case: "heartbeat", value: create(HeartbeatSchema) };
}

function event(revision: number, epoch: string, init: WatchCertificatesResponse["event"]): WatchCertificatesResponse {
  return create(WatchCertificatesResponseSchema, { revision: BigInt(revision), storeEpoch: epoch, event: init });
}
