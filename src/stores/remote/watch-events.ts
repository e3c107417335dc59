import type {
  Certificate as CertificateMessage,
  Snapshot,
  WatchCertificatesResponse,
} from "../../gen/certgate/v1/certificate_store_pb.js";
import type { MirrorTable } from "./mirror-table.js";

/**
 * ProtocolError says the service broke the watch protocol: the mirror
 * starts over from a snapshot.
 */
export class ProtocolError extends Error {}

const noLabels: Readonly<Record<string, string>> = Object.freeze({});

/**
 * storeEntry puts one certificate entry of a watch event into `table`,
 * throwing a `ProtocolError` for a malformed one.
 */
export function storeEntry(table: MirrorTable, message: CertificateMessage): void {
  if (!table.set(message.certificateId, message.sha256Thumbprint, message.labels)) {
    throw new ProtocolError(
      `the service sent a malformed certificate entry (id ${JSON.stringify(message.certificateId)})`,
    );
  }
}

/**
 * storeColumns puts a compact snapshot part (see
 * WatchCertificatesRequest.compact_snapshot) into `table`, throwing a
 * `ProtocolError` for a malformed one.
 */
export function storeColumns(table: MirrorTable, part: Snapshot): void {
  const ids = part.certificateIds;
  if (ids.length === 0) return;
  const indexes = part.labelSetIndexes;
  if (part.sha256Digests.length !== ids.length * 32 || indexes.length !== ids.length) {
    throw new ProtocolError("a compact snapshot part whose columns differ in length");
  }
  const labelSets = [noLabels, ...part.labelSets.map((s) => s.labels)];
  for (let i = 0; i < ids.length; i++) {
    const labels = labelSets[indexes[i]!];
    if (labels === undefined || !table.setDigest(ids[i]!, part.sha256Digests, i * 32, labels)) {
      throw new ProtocolError(`the service sent a malformed certificate entry (id ${JSON.stringify(ids[i])})`);
    }
  }
}

/**
 * releaseEvent drops an applied event's contents, so that what Connect
 * keeps of it is small.
 */
export function releaseEvent(response: WatchCertificatesResponse): void {
  const event = response.event;
  if (event.case === "snapshot") {
    event.value.certificates.length = 0;
    event.value.certificateIds.length = 0;
    event.value.sha256Digests = new Uint8Array(0);
    event.value.labelSetIndexes.length = 0;
  } else if (event.case === "change") {
    event.value.upserted.length = 0;
    event.value.deletedCertificateIds.length = 0;
  }
}
