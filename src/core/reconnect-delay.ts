/**
 * reconnectDelay is the wait before reconnect attempt `attempt` (from 0):
 * exponential backoff from `minMs`, capped at `maxMs`, with jitter over its
 * upper half, so that a fleet does not reconnect in step after its peer
 * restarts.
 */
export function reconnectDelay(attempt: number, minMs: number, maxMs: number): number {
  const base = Math.min(maxMs, minMs * 2 ** attempt);
  return base / 2 + (Math.random() * base) / 2;
}
