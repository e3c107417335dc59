import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { AuditLog } from "../core/audit.js";
import type { ListAuditEventsRequest, ListAuditEventsResponseSchema } from "../gen/certgate/v1/certificate_store_pb.js";
import { timestampMillis } from "./expiring.js";

// ListAuditEvents: one page of the audit trail, its filters checked, and
// the opaque tokens that continue it.

const defaultPageSize = 100;
const maxPageSize = 1000;

/**
 * listAuditPage serves one page of ListAuditEvents from `log`; a service
 * without an audit trail (`log` undefined) answers Unimplemented.
 */
export async function listAuditPage(
  log: AuditLog | undefined,
  req: ListAuditEventsRequest,
): Promise<MessageInitShape<typeof ListAuditEventsResponseSchema>> {
  if (log === undefined) {
    throw new ConnectError("this certificate store keeps no audit trail", Code.Unimplemented);
  }
  if (req.pageSize < 0) {
    throw new ConnectError("page_size must not be negative", Code.InvalidArgument);
  }
  if (req.certificateId.length > 256) {
    throw new ConnectError("certificate_id is too long", Code.InvalidArgument);
  }
  // Records keep control characters as U+FFFD: such a filter matches
  // nothing, and a NUL is no text to a database.
  if (/[\u0000-\u001f\u007f]/.test(req.certificateId)) {
    throw new ConnectError("certificate_id must not contain control characters", Code.InvalidArgument);
  }
  const limit = req.pageSize === 0 ? defaultPageSize : Math.min(req.pageSize, maxPageSize);
  const after = req.pageToken === "" ? undefined : decodeAuditToken(req.pageToken);
  const since = req.startTime === undefined ? undefined : new Date(timestampMillis("start_time", req.startTime));
  const until = req.endTime === undefined ? undefined : new Date(timestampMillis("end_time", req.endTime));
  let page: Awaited<ReturnType<AuditLog["list"]>>;
  try {
    page = await log.list({
      after,
      limit,
      ...(req.certificateId === "" ? {} : { certificateId: req.certificateId }),
      ...(since === undefined ? {} : { since }),
      ...(until === undefined ? {} : { until }),
    });
  } catch (error) {
    if (error instanceof ConnectError) throw error;
    throw new ConnectError("cannot read the audit trail", Code.Internal, undefined, undefined, error);
  }
  const last = page.events[page.events.length - 1];
  return {
    events: page.events.map((event) => ({
      sequence: BigInt(event.sequence),
      time: timestampFromDate(event.time),
      action: event.action,
      result: event.result,
      code: event.code,
      reason: event.reason,
      actorSubject: event.actor.subject,
      actorSha256Thumbprint: event.actor.sha256,
      certificateId: event.certificateId,
      sha256Thumbprint: event.sha256,
    })),
    nextPageToken: page.more && last !== undefined ? encodeAuditToken(last.sequence) : "",
    damagedRecordsSkipped: page.skipped ?? 0,
  };
}

// Versioned, as the certificate pages' tokens.
const tokenPrefix = "a1:";

function encodeAuditToken(sequence: number): string {
  return Buffer.from(tokenPrefix + String(sequence), "utf8").toString("base64url");
}

function decodeAuditToken(token: string): number {
  const text = Buffer.from(token, "base64url").toString("utf8");
  const sequence = Number(text.slice(tokenPrefix.length));
  if (
    !text.startsWith(tokenPrefix) ||
    !Number.isSafeInteger(sequence) ||
    sequence < 0 ||
    encodeAuditToken(sequence) !== token
  ) {
    throw new ConnectError("invalid page_token", Code.InvalidArgument);
  }
  return sequence;
}
