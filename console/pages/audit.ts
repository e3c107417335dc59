import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { errorText, store } from "../api.js";
import { h, replace } from "../dom.js";
import { dateOf, dnText, formatDate } from "../format.js";

/** AuditQuery is the audit page's filter, from the address. */
export interface AuditQuery {
  id: string;
  from: string;
  to: string;
}

// datetime-local values are read as UTC, as every time in the console is shown.
function timeOf(value: string): Date | undefined {
  if (value === "") return undefined;
  const t = Date.parse(`${value}Z`);
  return Number.isNaN(t) ? undefined : new Date(t);
}

/** auditPage lists the audit trail, filtered by certificate id and time, a page at a time. */
export function auditPage(main: HTMLElement, query: AuditQuery): () => void {
  const id = h("input", { id: "audit-id", value: query.id, autocomplete: "off" });
  const from = h("input", { id: "audit-from", type: "datetime-local", value: query.from });
  const to = h("input", { id: "audit-to", type: "datetime-local", value: query.to });
  const results = h("div", { id: "audit-results" });
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter the audit trail" },
    h("div", { class: "field" }, h("label", { for: "audit-id" }, "Certificate id"), id),
    h("div", { class: "field" }, h("label", { for: "audit-from" }, "From (UTC)"), from),
    h("div", { class: "field" }, h("label", { for: "audit-to" }, "Before (UTC)"), to),
    h("button", { type: "submit" }, "Filter"),
  );
  replace(main, h("h1", { tabindex: "-1" }, "Audit trail"), form, results);
  const tokens: string[] = [""];
  let page = 0;
  let alive = true;
  const load = async () => {
    replace(results, h("p", {}, "Loading…"));
    const start = timeOf(from.value);
    const end = timeOf(to.value);
    try {
      const res = await store.listAuditEvents({
        pageSize: 50,
        pageToken: tokens[page] ?? "",
        certificateId: id.value.trim(),
        ...(start === undefined ? {} : { startTime: timestampFromDate(start) }),
        ...(end === undefined ? {} : { endTime: timestampFromDate(end) }),
      });
      if (!alive) return;
      tokens[page + 1] = res.nextPageToken;
      const move = (label: string, target: number, disabled: boolean) =>
        h(
          "button",
          {
            type: "button",
            disabled,
            onclick: () => {
              page = target;
              void load();
            },
          },
          label,
        );
      replace(
        results,
        h(
          "div",
          { class: "table-wrap" },
          h(
            "table",
            { class: "cards" },
            h("caption", { class: "visually-hidden" }, "Audit events, oldest first"),
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ["Time", "Action", "Result", "Certificate", "Caller", "Reason"].map((t) =>
                  h("th", { scope: "col" }, t),
                ),
              ),
            ),
            h(
              "tbody",
              {},
              res.events.map((e) =>
                h(
                  "tr",
                  { class: e.result === "ok" ? "" : "refused" },
                  h("td", { "data-label": "Time" }, formatDate(dateOf(e.time))),
                  h("td", { "data-label": "Action" }, e.action),
                  h("td", { "data-label": "Result" }, e.code === "" ? e.result : `${e.result} (${e.code})`),
                  h("td", { "data-label": "Certificate" }, e.certificateId),
                  h("td", { class: "dn", "data-label": "Caller" }, dnText(e.actorSubject) || e.actorSha256Thumbprint),
                  h("td", { "data-label": "Reason" }, e.reason),
                ),
              ),
            ),
          ),
        ),
        res.events.length === 0 ? h("p", {}, "No audit events match.") : null,
        h(
          "nav",
          { class: "pager", "aria-label": "Pages" },
          move("Previous page", page - 1, page === 0),
          ` Page ${page + 1} `,
          move("Next page", page + 1, res.nextPageToken === ""),
        ),
      );
    } catch (error) {
      if (alive) replace(results, h("p", { class: "error", role: "alert" }, errorText(error)));
    }
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    if (id.value.trim() !== "") params.set("id", id.value.trim());
    if (from.value !== "") params.set("from", from.value);
    if (to.value !== "") params.set("to", to.value);
    history.replaceState(null, "", `#/audit${params.size === 0 ? "" : `?${params}`}`);
    tokens.length = 1;
    page = 0;
    void load();
  });
  void load();
  return () => {
    alive = false;
  };
}
