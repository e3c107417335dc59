// Reading a client certificate from the TLS session, the cheapest way, and
// checking once per process that it agrees with getPeerCertificate(false).
import type { PeerCertificateInfo } from "./certificate.js";
import { peerDerOfTlsSession } from "./tls-session-peer.js";
import type { TlsSocketLike } from "./peer-certificate.js";
import { warnOnce } from "./warn-once.js";

/**
 * sessionReads is whether this process reads client certificates from the
 * TLS session: undefined until the first certificate read from a session
 * has been compared with getPeerCertificate(false), then the answer. A Node
 * built against a TLS library whose session encoding differs falls back for
 * good; CERTGATE_SESSION=off turns the session read off from the start.
 * Exported as a live binding: readers see `checkSessionRead`'s verdict
 * without a call.
 */
export let sessionReads: boolean | undefined = sessionReadsSetting(process.env.CERTGATE_SESSION);

// CERTGATE_SESSION: "off" reads every certificate with getPeerCertificate(false),
// unset or "on" reads the session. Anything else is a mistake that must not
// change the read silently, so it warns and keeps the default.
function sessionReadsSetting(value: string | undefined): false | undefined {
  if (value === undefined || value === "" || value === "on") return undefined;
  if (value === "off") return false;
  warnOnce(
    "session_setting",
    `certgate: CERTGATE_SESSION=${JSON.stringify(value).slice(0, 40)} is not "on" or "off"; reading client certificates from the TLS session`,
  );
  return undefined;
}

/**
 * readSession returns the client certificate's DER (a byte string, see
 * peerDerOfTlsSession) in the socket's TLS session, null when the session
 * holds none, undefined when there is no session or it cannot be read (then
 * getPeerCertificate decides).
 */
export function readSession(
  getSession: () => Uint8Array | undefined,
  socket: TlsSocketLike,
): string | null | undefined {
  try {
    const session = getSession.call(socket);
    if (!(session instanceof Uint8Array)) return undefined;
    return peerDerOfTlsSession(session) ?? null;
  } catch {
    return undefined;
  }
}

/**
 * checkSessionRead compares the certificate read from the session with
 * getPeerCertificate(false)'s, and settles `sessionReads` on the answer.
 */
export function checkSessionRead(
  fromSession: string | null,
  info: Partial<PeerCertificateInfo> | null | undefined,
): void {
  const raw = info?.raw;
  if (fromSession === null || !(raw instanceof Uint8Array)) {
    // Agreement on "no certificate" proves nothing; a disagreement does.
    if (fromSession !== null || raw instanceof Uint8Array) sessionReads = false;
    return;
  }
  sessionReads = Buffer.compare(Buffer.from(fromSession, "latin1"), raw) === 0;
  if (!sessionReads) {
    warnOnce(
      "session",
      "certgate: the TLS session's client certificate differs from getPeerCertificate(); reading it with getPeerCertificate() from now on",
    );
  }
}
