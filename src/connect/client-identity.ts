import type { ContextValues, HandlerContext } from "@connectrpc/connect";
import { identityOf, type ClientIdentity } from "../policy/client-identity.js";
import { clientCertificateKey } from "./context-values.js";

/**
 * clientIdentity returns the typed identity of the client certificate that
 * certgate admitted for this call, or undefined when none was (no certgate
 * in front of the handler, a procedure left open with `allow: "any"`, or a
 * call let through by `reportOnly`). Pass the handler context or its values.
 *
 * @example
 * say(req, ctx) {
 *   const who = clientIdentity(ctx);
 *   return { sentence: `hello ${who?.spiffeId ?? who?.subject.commonName}` };
 * }
 */
export function clientIdentity(context: HandlerContext | ContextValues): ClientIdentity | undefined {
  const values = "values" in context ? context.values : context;
  const certificate = values.get(clientCertificateKey);
  if (certificate === undefined) {
    return undefined;
  }
  try {
    return identityOf(certificate);
  } catch {
    return undefined;
  }
}
