import { auditEventMatches, type AuditEvent, type AuditLog } from "../core/audit.js";

/**
 * MemoryAuditLogOptions configures `createMemoryAuditLog`.
 */
export interface MemoryAuditLogOptions {
  /**
   * Keep at most this many records of changes (`ok`) and, apart, this many
   * records of attempts (refused, failed, suppressed); the oldest of each
   * kind go first, so refusals never push out changes. By default, 10000.
   */
  maxEvents?: number;
}

/**
 * createMemoryAuditLog returns an `AuditLog` kept in memory: the memory
 * store's, and one for tests. It forgets everything when the process ends.
 */
export function createMemoryAuditLog(options: MemoryAuditLogOptions = {}): AuditLog {
  const maxEvents = options.maxEvents ?? 10_000;
  if (!Number.isSafeInteger(maxEvents) || maxEvents < 1) {
    throw new TypeError("createMemoryAuditLog(): maxEvents must be a positive integer");
  }
  const events: AuditEvent[] = [];
  let sequence = 0;
  let changes = 0;
  return {
    record(record) {
      events.push(Object.freeze({ ...record, actor: Object.freeze({ ...record.actor }), sequence: ++sequence }));
      const isChange = record.result === "ok";
      if (isChange) changes++;
      if ((isChange ? changes : events.length - changes) > maxEvents) {
        const oldest = events.findIndex((e) => (e.result === "ok") === isChange);
        events.splice(oldest, 1);
        if (isChange) changes--;
      }
      return Promise.resolve();
    },
    list(query) {
      const page: AuditEvent[] = [];
      for (const event of events) {
        if (!auditEventMatches(event, query)) continue;
        if (page.length === query.limit) return Promise.resolve({ events: page, more: true });
        page.push(event);
      }
      return Promise.resolve({ events: page, more: false });
    },
  };
}
