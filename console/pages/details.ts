import type { Certificate } from "../../src/gen/certgate/v1/certificate_store_pb.js";
import { errorText, type Role, store } from "../api.js";
import { deleteWithConfirmation } from "../delete.js";
import { h, replace } from "../dom.js";
import { colonHex, dateOf, daysLeft, daysLeftText, dnText, formatDate, labelsText } from "../format.js";
import type { CertificateModel } from "../model.js";
import type { CertificateFacts } from "../x509.js";

/** detailsPage shows every field of one certificate, and Delete for admins. */
export function detailsPage(main: HTMLElement, model: CertificateModel, role: Role, id: string): () => void {
  const body = h("div", {}, h("p", {}, "Loading…"));
  replace(
    main,
    h("p", {}, h("a", { href: "#/certificates" }, "← All certificates")),
    h("h1", { tabindex: "-1" }, id),
    body,
  );
  let alive = true;
  void (async () => {
    let c: Certificate | undefined;
    try {
      c = (await store.getCertificate({ certificateId: id })).certificate;
    } catch (error) {
      if (alive) replace(body, h("p", { class: "error", role: "alert" }, errorText(error)));
      return;
    }
    if (!alive || c === undefined) return;
    const cert = c;
    let facts: CertificateFacts | undefined;
    try {
      // pkijs is loaded with the first page that needs it.
      const { factsOf } = await import("../x509.js");
      facts = factsOf(cert.der);
    } catch {
      facts = undefined;
    }
    const uploaded = h("dd", { id: "uploaded" }, "…");
    const row = (term: string, ...value: (string | Node)[]) => [h("dt", {}, term), h("dd", {}, ...value)];
    const notAfter = dateOf(cert.notAfter);
    replace(
      body,
      h(
        "dl",
        { class: "fields" },
        row("Subject", dnText(cert.subject)),
        row("Issuer", dnText(cert.issuer)),
        row(
          "Subject alternative names",
          facts === undefined ? "(unreadable)" : facts.sans.length === 0 ? "none" : facts.sans.join(", "),
        ),
        row("Serial number", h("code", {}, cert.serialNumber), ` (${colonHex(cert.serialNumber)})`),
        row("Not before", formatDate(dateOf(cert.notBefore))),
        row("Not after", formatDate(notAfter), ` (${daysLeftText(daysLeft(notAfter))})`),
        row("Key type", facts?.keyType ?? "(unreadable)"),
        row("CA certificate", cert.isCa ? "yes" : "no"),
        row("SHA-1", h("code", { class: "wrap" }, cert.sha1Thumbprint)),
        row("SHA-256", h("code", { class: "wrap" }, cert.sha256Thumbprint)),
        row("Labels", Object.keys(cert.labels).length === 0 ? "none" : labelsText(cert.labels)),
        row("Stored", formatDate(dateOf(cert.createTime))),
        h("dt", {}, "Uploaded by"),
        uploaded,
      ),
      role === "admin"
        ? h(
            "p",
            {},
            h(
              "button",
              {
                type: "button",
                class: "danger",
                "aria-label": `Delete ${cert.certificateId}`,
                onclick: async () => {
                  if (await deleteWithConfirmation(model, cert)) location.hash = "#/certificates";
                },
              },
              "Delete",
            ),
          )
        : null,
    );
    // The newest successful create naming the id is who put this one there.
    try {
      let pageToken = "";
      let last: { who: string; when: string } | undefined;
      do {
        const page = await store.listAuditEvents({ certificateId: id, pageSize: 1000, pageToken });
        for (const e of page.events) {
          if (e.action === "create" && e.result === "ok") {
            last = {
              who: dnText(e.actorSubject) || e.actorSha256Thumbprint || "unknown",
              when: formatDate(dateOf(e.time)),
            };
          }
        }
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
      if (alive) replace(uploaded, last === undefined ? "not in the audit trail" : `${last.who}, ${last.when}`);
    } catch (error) {
      if (alive) replace(uploaded, `audit trail unavailable: ${errorText(error)}`);
    }
  })();
  return () => {
    alive = false;
  };
}
