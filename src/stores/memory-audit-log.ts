import { auditEventMatches, type AuditEvent, type AuditLog } from "../core/audit.js";

/**
 * MemoryAuditLogOptions configures `createMemoryAuditLog`.
 */
export interface MemoryAuditLogOptions {
  /** Keep at most this many events; the oldest go first. By default, 10000. */
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
  return {
    record(record) {
      events.push(Object.freeze({ ...record, actor: Object.freeze({ ...record.actor }), sequence: ++sequence }));
      if (events.length > maxEvents) events.splice(0, events.length - maxEvents);
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
