import type { IncomingHttpHeaders } from "node:http";
import { createLruCache } from "../core/lru-cache.js";
import { requestShapeOf } from "./request-shape.js";

// Requests of a remembered shape that go straight to the adapter before one
// is probed again: a shape remembered for one odd request (a malformed
// timeout header, say) soon returns to the fast path.
const probeEvery = 64;
const capacity = 256;
const maxKeyLength = 1024;

/**
 * UnroutedShapes remembers the request shapes (see `requestShapeOf`) that
 * Connect answered without reaching the gate (unknown paths, protocols the
 * adapter does not serve), so that the fast refusal path does not record
 * and probe every such call to learn nothing.
 */
export interface UnroutedShapes {
  /** Remembers that a request of this shape did not reach the gate. */
  note(req: { readonly headers: IncomingHttpHeaders }, path: string): void;
  /** Whether a request of this shape goes to the adapter without being probed. */
  skips(req: { readonly headers: IncomingHttpHeaders }, path: string): boolean;
}

/**
 * createUnroutedShapes returns an empty `UnroutedShapes` of bounded size
 * (256 shapes, least recently used first out); one call in 64 of a
 * remembered shape is probed again.
 */
export function createUnroutedShapes(): UnroutedShapes {
  const skipped = createLruCache<string, number>(capacity);
  return {
    note(req, path) {
      const key = requestShapeOf(req, path);
      if (key !== undefined && key.length <= maxKeyLength) skipped.set(key, 0);
    },
    skips(req, path) {
      const key = requestShapeOf(req, path);
      const count = key === undefined ? undefined : skipped.get(key);
      if (key === undefined || count === undefined) return false;
      if (count + 1 >= probeEvery) {
        skipped.delete(key);
        return false;
      }
      skipped.set(key, count + 1);
      return true;
    },
  };
}
