import { Code, ConnectError } from "@connectrpc/connect";

// SQLSTATE classes and codes (https://www.postgresql.org/docs/current/errcodes-appendix.html).
const connectionClasses = ["08", "57", "53"];
const nodeNetworkCodes = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

/**
 * isConnectionError tells whether a failure says the database cannot be
 * reached (refused, reset, terminated, shutting down, out of connections,
 * a connect time-out, no answer within the query deadline), as opposed to a statement it refused.
 */
export function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === "string") {
    if (nodeNetworkCodes.has(code)) return true;
    if (code === "53100" || code === "57014") return false;
    // The server ended this session for idling inside its transaction.
    if (code === "25P03") return true;
    if (code.length === 5 && connectionClasses.includes(code.slice(0, 2))) return true;
  }
  const message = error instanceof Error ? error.message : "";
  return /Query read timeout|Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Client was closed|Cannot use a pool after calling end/i.test(
    message,
  );
}

/**
 * isTimeout tells whether a failure is one of the store's deadlines: the
 * write lock not free within `lock_timeout` (55P03), a statement cancelled
 * by `statement_timeout` (57014), or no answer within the client-side
 * query deadline.
 */
export function isTimeout(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (code === "55P03" || code === "57014") return true;
  return error instanceof Error && /Query read timeout/.test(error.message);
}

/**
 * storeError turns a database failure during `what` into the `ConnectError`
 * kinds of the folder store: `Unavailable` when the database cannot be
 * reached, `FailedPrecondition` when it does not let us write (a read-only
 * standby, missing privileges), `ResourceExhausted` when it is out of space,
 * `InvalidArgument` for a value it cannot hold, `Internal` otherwise. The
 * cause is kept for logs.
 */
export function storeError(what: string, error: unknown): ConnectError {
  if (error instanceof ConnectError) return error;
  const [reason, code] = reasonOf(error);
  return new ConnectError(`cannot ${what}: ${reason}`, code, undefined, undefined, error);
}

// What a database failure tells the caller, and the code it is answered with.
function reasonOf(error: unknown): [string, Code] {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (code === "55P03") {
    return ["another write held the store's write lock past the lock deadline; try again", Code.Unavailable];
  }
  if (code === "57014") {
    return ["the database did not finish within the statement deadline", Code.Unavailable];
  }
  if (error instanceof Error && /Query read timeout/.test(error.message)) {
    return ["no answer from the database within the query deadline", Code.Unavailable];
  }
  if (error instanceof Error && /timeout exceeded when trying to connect/.test(error.message)) {
    return [
      "no database connection within the connect deadline (the database is unreachable or every connection is busy)",
      Code.Unavailable,
    ];
  }
  if (isConnectionError(error)) return ["the database is unreachable", Code.Unavailable];
  // A data exception: a value the database cannot hold (a NUL in text,
  // a character the encoding lacks), which is the caller's to fix.
  if (typeof code === "string" && code.startsWith("22")) {
    return [`the database refused a value (${code})`, Code.InvalidArgument];
  }
  if (code === "25006" || code === "42501") {
    return [`the database does not accept this write (${code})`, Code.FailedPrecondition];
  }
  if (code === "53100") return ["the database is out of space", Code.ResourceExhausted];
  return [`database error${typeof code === "string" ? ` ${code}` : ""}`, Code.Internal];
}
