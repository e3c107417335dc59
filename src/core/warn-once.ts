const warned = new Set<string>();

/**
 * warnOnce emits a process warning the first time it is called with a code,
 * as `CERTGATE_<CODE>`: configuration problems (plaintext, no requestCert, no
 * context values) are said once, not once per refused call.
 */
export function warnOnce(code: string, message: string): void {
  if (!warned.has(code)) {
    warned.add(code);
    process.emitWarning(message, { code: `CERTGATE_${code.toUpperCase()}` });
  }
}
