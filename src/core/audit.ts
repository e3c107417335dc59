/**
 * AuditAction is what an audited call tried to do to the store:
 * `create_batch` is one CreateCertificates call (its `reason` gives the
 * count; each certificate stored also has its `create` record).
 */
export type AuditAction = "create" | "delete" | "create_batch";

/**
 * AuditResult is how an audited attempt ended: `ok` (the change is stored),
 * `refused` (the caller was not allowed, or the request was refused, such as
 * an invalid upload or a taken id: nothing changed), `failed` (the store
 * failed: nothing changed), or `suppressed` (a summary of refused attempts
 * not recorded one by one, see the service's `auditRefusalsPerMinute`).
 */
export type AuditResult = "ok" | "refused" | "failed" | "suppressed";

/**
 * AuditActor is the client certificate that made a call.
 */
export interface AuditActor {
  /** Its subject distinguished name; empty when the caller sent no certificate. */
  readonly subject: string;
  /** Its SHA-256 thumbprint, upper-case hex; empty when the caller sent no certificate. */
  readonly sha256: string;
}

/**
 * AuditRecord is one attempt to change the store, as given to an `AuditLog`.
 */
export interface AuditRecord {
  /** When the attempt was decided. */
  readonly time: Date;
  readonly action: AuditAction;
  readonly result: AuditResult;
  /**
   * The status of a refusal or failure in snake case (`permission_denied`,
   * `invalid_argument`, `already_exists`...); empty when `ok`.
   */
  readonly code: string;
  /** Why, for people (the error message); empty when `ok`. */
  readonly reason: string;
  readonly actor: AuditActor;
  /**
   * The id the call named; empty when it is not known, such as for a call
   * refused before its request was read (a caller without the admin role).
   */
  readonly certificateId: string;
  /** The SHA-256 thumbprint of the certificate concerned, when known; else empty. */
  readonly sha256: string;
}

/**
 * okAuditRecord is the record of a change that was made: no code, no reason.
 */
export function okAuditRecord(
  time: Date,
  action: AuditAction,
  actor: AuditActor,
  certificateId: string,
  sha256: string,
): AuditRecord {
  return { time, action, result: "ok", code: "", reason: "", actor, certificateId, sha256 };
}

/**
 * AuditEvent is an `AuditRecord` as kept by an `AuditLog`, with its place in it.
 */
export interface AuditEvent extends AuditRecord {
  /** Increasing in the order the log keeps the events; the page position. */
  readonly sequence: number;
}

/**
 * AuditQuery asks an `AuditLog` for one page of events, oldest first.
 */
export interface AuditQuery {
  /** Only events after this sequence number. By default, from the first. */
  readonly after?: number;
  /** At most this many events. */
  readonly limit: number;
  /** Only events naming this certificate id. By default, any. */
  readonly certificateId?: string;
  /** Only events at or after this time. By default, any. */
  readonly since?: Date;
  /** Only events before this time. By default, any. */
  readonly until?: Date;
}

/**
 * AuditPage is one page of an `AuditLog`.
 */
export interface AuditPage {
  /** The events, oldest first. */
  readonly events: readonly AuditEvent[];
  /** Whether more events may follow the last one. */
  readonly more: boolean;
  /**
   * How many damaged records (lines that fail their digest: edited, torn)
   * the log skipped while reading this page. By default, none.
   */
  readonly skipped?: number;
}

/**
 * AuditLog is an append-only record of the attempts to change a
 * `WritableCertificateStore`, kept in the store's own backend: a file in the
 * folder store's folder, a table in the PostgreSQL store, a bounded array in
 * the memory store.
 *
 * The contract between the certificate store service and a store with an
 * `audit` log:
 * - The service passes `actor` to `put` and `delete`; the store records the
 *   `ok` event of a successful write itself before the write resolves (the
 *   PostgreSQL store in the write's own transaction, so a change is never
 *   without its record). A store that cannot record fails the write's call.
 * - The service records refused and failed attempts with `record`.
 * - `record` resolves once the record is durable (fsync'd, committed).
 */
export interface AuditLog {
  /** Appends one record; resolves once it is durable. */
  record(record: AuditRecord): Promise<void>;
  /**
   * Returns one page of events matching the query, oldest first, and
   * whether more events may follow the last one.
   */
  list(query: AuditQuery): Promise<AuditPage>;
}

/**
 * AuditedWrite is the `actor` option of `put` and `delete` on a store with an
 * `audit` log: who asked for the write, recorded with it.
 */
export interface AuditedWrite {
  /** The caller; the store records the write's `ok` event with it. By default, nothing is recorded. */
  readonly actor?: AuditActor;
  /** The time of the record. By default, the store's clock. */
  readonly auditTime?: Date;
}

/**
 * auditEventMatches tells whether an event passes a query's filters (not
 * its position), for logs that filter in memory.
 */
export function auditEventMatches(event: AuditEvent, query: AuditQuery): boolean {
  if (query.after !== undefined && event.sequence <= query.after) return false;
  if (query.certificateId !== undefined && event.certificateId !== query.certificateId) return false;
  const t = event.time.getTime();
  if (query.since !== undefined && t < query.since.getTime()) return false;
  if (query.until !== undefined && t >= query.until.getTime()) return false;
  return true;
}
