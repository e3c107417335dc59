import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { okAuditRecord, type AuditAction, type AuditActor, type AuditLog, type AuditRecord } from "../core/audit.js";
import type { DecisionEvent } from "../core/decision-report.js";
import { clientCertificateKey } from "../connect/context-values.js";
import type { ListAuditEventsRequest, ListAuditEventsResponseSchema } from "../gen/certgate/v1/certificate_store_pb.js";
import { listAuditPage } from "./audit-page.js";

/**
 * ServiceAuditOptions configures `createServiceAudit`.
 */
export interface ServiceAuditOptions {
  /** Where the records go; undefined: the service keeps no audit trail. */
  readonly log: AuditLog | undefined;
  /** Whether the store records the `ok` event of a write given an `actor` (the log is the store's). */
  readonly storeRecords: boolean;
  /** The current time of the records. */
  readonly now: () => number;
  /** At most this many refusals by the access gate recorded per minute. */
  readonly refusalsPerMinute: number;
  /** Told when a record of a refusal or failure could not be written. */
  readonly onError: (error: unknown) => void;
}

/**
 * ServiceAudit is what the certificate store service records, and how it
 * answers ListAuditEvents.
 */
export interface ServiceAudit {
  /** The `actor` and time to give the store's `put` and `delete`, when the store records them; else `{}`. */
  forStore(context: HandlerContext): { actor?: AuditActor; auditTime?: Date };
  /** Records a successful write, unless the store did. */
  written(action: AuditAction, context: HandlerContext, certificateId: string, sha256: string): Promise<void>;
  /**
   * Records a stored batch of `count` certificates (`create_batch`, the
   * count in its reason), whoever recorded the certificates themselves.
   */
  batchWritten(context: HandlerContext, count: number): Promise<void>;
  /** Records a refused or failed write (the error the call fails with); never throws. */
  attemptFailed(
    action: AuditAction,
    context: HandlerContext,
    certificateId: string,
    sha256: string,
    error: unknown,
  ): Promise<void>;
  /** Hears the access gate's decisions; records refused writes, at most `refusalsPerMinute`. */
  onDecision(event: DecisionEvent): void;
  /** Serves one page of ListAuditEvents. */
  listPage(req: ListAuditEventsRequest): Promise<MessageInitShape<typeof ListAuditEventsResponseSchema>>;
  /** Writes the summary of suppressed refusals, if any, and stops the timer. */
  close(): Promise<void>;
}

const noActor: AuditActor = Object.freeze({ subject: "", sha256: "" });

/**
 * createServiceAudit builds the certificate store service's side of the
 * audit trail (see `AuditLog` for the store's side).
 *
 * Refusals by the access gate come before the request is read (so their
 * records have no certificate id) and from anyone who can open a TLS
 * connection: they are recorded without delaying the refusal, at most
 * `refusalsPerMinute` a minute, and one `suppressed` record per action says
 * how many more there were, so that refused callers cannot flood the trail.
 */
export function createServiceAudit(options: ServiceAuditOptions): ServiceAudit {
  const { log, storeRecords, now, refusalsPerMinute, onError } = options;
  let windowTimer: NodeJS.Timeout | undefined;
  let recorded = 0;
  const suppressed = new Map<AuditAction, number>();
  const pending = new Set<Promise<void>>();

  function write(record: AuditRecord): Promise<void> {
    if (log === undefined) return Promise.resolve();
    const done = log
      .record(record)
      .catch((error: unknown) => {
        try {
          onError(error);
        } catch {
          // A failing hook must not fail the call.
        }
      })
      .finally(() => pending.delete(done));
    pending.add(done);
    return done;
  }

  function flushSuppressed(): void {
    windowTimer = undefined;
    recorded = 0;
    for (const [action, count] of suppressed) {
      void write({
        time: new Date(now()),
        action,
        result: "suppressed",
        code: "",
        reason: `${count} more refused ${action} attempt${count === 1 ? "" : "s"} in the last minute, not recorded one by one`,
        actor: noActor,
        certificateId: "",
        sha256: "",
      });
    }
    suppressed.clear();
  }

  return {
    forStore(context) {
      return log !== undefined && storeRecords ? { actor: actorOf(context), auditTime: new Date(now()) } : {};
    },
    async written(action, context, certificateId, sha256) {
      if (log === undefined || storeRecords) return;
      // The change is stored: a record that cannot be written fails the call,
      // as it does when the store records it.
      await log.record(okAuditRecord(new Date(now()), action, actorOf(context), certificateId, sha256));
    },
    async batchWritten(context, count) {
      if (log === undefined) return;
      await log.record({
        ...okAuditRecord(new Date(now()), "create_batch", actorOf(context), "", ""),
        reason: `${count} certificate${count === 1 ? "" : "s"}`,
      });
    },
    attemptFailed(action, context, certificateId, sha256, error) {
      const connect = ConnectError.from(error);
      return write({
        time: new Date(now()),
        action,
        result: refusedCodes.has(connect.code) ? "refused" : "failed",
        code: snakeCase(Code[connect.code] ?? "unknown"),
        reason: clean(connect.rawMessage, maxReasonBytes),
        actor: actorOf(context, maxRefusalTextBytes),
        certificateId: clean(certificateId, maxRefusalTextBytes),
        sha256,
      });
    },
    onDecision(event) {
      if (log === undefined || event.kind !== "refused" || event.reportOnly === true) return;
      const action = actionOf(event.procedure);
      if (action === undefined) return;
      windowTimer ??= setTimeout(flushSuppressed, 60_000).unref();
      if (recorded >= refusalsPerMinute) {
        suppressed.set(action, (suppressed.get(action) ?? 0) + 1);
        return;
      }
      recorded++;
      void write({
        time: new Date(now()),
        action,
        result: "refused",
        code: event.code === Code.PermissionDenied ? "permission_denied" : "unauthenticated",
        reason: clean(String(event.reason ?? "refused"), maxRefusalTextBytes),
        actor:
          event.certificate === undefined
            ? noActor
            : {
                subject: subjectOf(event.certificate.subject, maxRefusalTextBytes),
                sha256: event.certificate.sha256,
              },
        certificateId: "",
        sha256: "",
      });
    },
    listPage: (req) => listAuditPage(log, req),
    async close() {
      if (windowTimer !== undefined) {
        clearTimeout(windowTimer);
        flushSuppressed();
      }
      await Promise.all([...pending]);
    },
  };
}

// Refusals: the caller or the request was at fault and nothing changed.
const refusedCodes = new Set<Code>([
  Code.InvalidArgument,
  Code.AlreadyExists,
  Code.NotFound,
  Code.PermissionDenied,
  Code.Unauthenticated,
  Code.FailedPrecondition,
  Code.ResourceExhausted,
  Code.OutOfRange,
]);

function actionOf(procedure: string): AuditAction | undefined {
  if (procedure.endsWith("/CreateCertificate")) return "create";
  if (procedure.endsWith("/CreateCertificates")) return "create_batch";
  if (procedure.endsWith("/DeleteCertificate")) return "delete";
  return undefined;
}

function actorOf(context: HandlerContext, maxSubjectBytes = maxSubjectBytesOfChanges): AuditActor {
  const certificate = context.values.get(clientCertificateKey);
  return certificate === undefined
    ? noActor
    : { subject: subjectOf(certificate.subject, maxSubjectBytes), sha256: certificate.sha256 };
}

// Node prints a distinguished name one attribute a line; records keep the
// one-line form people read (`CN=alice, O=Contoso`).
function subjectOf(dn: string, maxBytes: number): string {
  return clean(
    dn
      .split("\n")
      .filter((part) => part.length > 0)
      .join(", "),
    maxBytes,
  );
}

function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (c, i: number) => (i === 0 ? "" : "_") + c.toLowerCase());
}

// A record of a refusal is bounded (a few hundred bytes of each text; the
// thumbprint is the caller's identity), so that anyone who can open a TLS
// connection writes little; an admin's change keeps a longer subject.
const maxRefusalTextBytes = 256;
const maxReasonBytes = 1024;
const maxSubjectBytesOfChanges = 4096;

// What a caller sent may hold control characters (a NUL that PostgreSQL
// text refuses) and be long: records keep a bounded, printable copy, at
// most `maxBytes` bytes of UTF-8 (a cut one ends with `…`).
function clean(text: string, maxBytes: number): string {
  const printable = text.replace(/[\u0000-\u001f\u007f]/g, "\ufffd");
  if (Buffer.byteLength(printable) <= maxBytes) return printable;
  let cut = Buffer.from(printable)
    .subarray(0, maxBytes - 3)
    .toString("utf8");
  // A character cut in half decodes as U+FFFD: drop it.
  if (cut.endsWith("\ufffd") && !printable.startsWith(cut)) cut = cut.slice(0, -1);
  return `${cut}…`;
}
