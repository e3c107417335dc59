import type { Certificate } from "../../src/gen/certgate/v1/certificate_store_pb.js";
import type { Role } from "../api.js";
import { deleteWithConfirmation } from "../delete.js";
import { h, replace } from "../dom.js";
import { dateOf, daysLeft, daysLeftText, dnText, formatDate, hexOnly, labelsText, shortThumbprint } from "../format.js";
import type { CertificateModel } from "../model.js";
import { toast } from "../toast.js";

const pageSize = 50;

/** CertificatesQuery is the table's state in the address: search, expiry window, page. */
export interface CertificatesQuery {
  q: string;
  from?: string;
  to?: string;
  page: number;
}

/** matches tells whether a certificate matches the search text. */
export function matches(c: Certificate, q: string): boolean {
  const text = q.trim().toLowerCase();
  if (text === "") return true;
  if (c.certificateId.toLowerCase().includes(text)) return true;
  if (dnText(c.subject).toLowerCase().includes(text) || dnText(c.issuer).toLowerCase().includes(text)) return true;
  if (labelsText(c.labels).toLowerCase().includes(text)) return true;
  const hex = hexOnly(q);
  return hex.length >= 4 && (c.sha256Thumbprint.includes(hex) || c.sha1Thumbprint.includes(hex));
}

/** sortedByExpiry sorts by not-after, soonest first, then by id. */
export function sortedByExpiry(list: Iterable<Certificate>): Certificate[] {
  const time = (c: Certificate) => dateOf(c.notAfter)?.getTime() ?? Number.POSITIVE_INFINITY;
  return [...list].sort((a, b) => time(a) - time(b) || a.certificateId.localeCompare(b.certificateId));
}

/** certificatesPage renders the table into `main` and keeps it current. */
export function certificatesPage(
  main: HTMLElement,
  model: CertificateModel,
  role: Role,
  query: CertificatesQuery,
): () => void {
  const search = h("input", {
    type: "search",
    id: "search",
    value: query.q,
    placeholder: "id, subject, thumbprint or label",
    autocomplete: "off",
  });
  const results = h("div", { id: "results" });
  let page = query.page;
  const setAddress = () => {
    const params = new URLSearchParams();
    if (search.value !== "") params.set("q", search.value);
    if (query.from !== undefined) params.set("from", query.from);
    if (query.to !== undefined) params.set("to", query.to);
    if (page > 0) params.set("page", String(page));
    const text = params.toString();
    history.replaceState(null, "", `#/certificates${text === "" ? "" : `?${text}`}`);
  };
  search.addEventListener("input", () => {
    page = 0;
    setAddress();
    render();
  });
  const window =
    query.from === undefined && query.to === undefined
      ? undefined
      : h(
          "p",
          { class: "filter" },
          `Expiring from ${query.from ?? "the start"} to before ${query.to ?? "the end"}. `,
          h("a", { href: "#/certificates" }, "Show all certificates"),
        );
  replace(
    main,
    h("h1", { tabindex: "-1" }, "Certificates"),
    h("div", { class: "search" }, h("label", { for: "search" }, "Search certificates"), search),
    window,
    results,
  );

  function render(): void {
    if (!model.loaded) {
      replace(results, h("p", {}, "Loading…"));
      return;
    }
    const from = query.from === undefined ? -Infinity : Date.parse(`${query.from}T00:00:00Z`);
    const to = query.to === undefined ? Infinity : Date.parse(`${query.to}T00:00:00Z`);
    const all = sortedByExpiry(model.byId.values()).filter((c) => {
      const end = dateOf(c.notAfter)?.getTime() ?? 0;
      return end >= from && end < to && matches(c, search.value);
    });
    const pages = Math.max(1, Math.ceil(all.length / pageSize));
    page = Math.min(page, pages - 1);
    const shown = all.slice(page * pageSize, (page + 1) * pageSize);
    const now = Date.now();
    const row = (c: Certificate) => {
      const days = daysLeft(dateOf(c.notAfter), now);
      const state = days === undefined ? "" : days < 0 ? "expired" : days <= 30 ? "soon" : "";
      return h(
        "tr",
        { class: state },
        h(
          "th",
          { scope: "row" },
          h("a", { href: `#/certificates/${encodeURIComponent(c.certificateId)}` }, c.certificateId),
        ),
        h("td", { class: "dn", "data-label": "Subject" }, dnText(c.subject)),
        h("td", { class: "dn", "data-label": "Issuer" }, dnText(c.issuer)),
        h("td", { "data-label": "Not after" }, formatDate(dateOf(c.notAfter))),
        h("td", { class: "days", "data-label": "Days left" }, daysLeftText(days)),
        h("td", { "data-label": "Labels" }, labelsText(c.labels)),
        h(
          "td",
          { class: "thumb", "data-label": "SHA-256" },
          h("code", { title: c.sha256Thumbprint }, shortThumbprint(c.sha256Thumbprint)),
          " ",
          h(
            "button",
            {
              type: "button",
              class: "small",
              "aria-label": `Copy SHA-256 of ${c.certificateId}`,
              onclick: () =>
                navigator.clipboard.writeText(c.sha256Thumbprint).then(
                  () => toast(`Copied the SHA-256 thumbprint of ${c.certificateId}.`),
                  () => toast("The browser did not allow copying.", true),
                ),
            },
            "Copy",
          ),
        ),
        role === "admin"
          ? h(
              "td",
              {},
              h(
                "button",
                {
                  type: "button",
                  class: "small danger",
                  "aria-label": `Delete ${c.certificateId}`,
                  onclick: () => void deleteWithConfirmation(model, c),
                },
                "Delete",
              ),
            )
          : null,
      );
    };
    const nav = (label: string, target: number, disabled: boolean) =>
      h(
        "button",
        {
          type: "button",
          disabled,
          onclick: () => {
            page = target;
            setAddress();
            render();
          },
        },
        label,
      );
    replace(
      results,
      model.error === undefined ? null : h("p", { class: "error", role: "alert" }, model.error),
      h(
        "p",
        { class: "count" },
        `${all.length} of ${model.byId.size} certificate${model.byId.size === 1 ? "" : "s"}, sorted by expiry`,
      ),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "cards" },
          h("caption", { class: "visually-hidden" }, "Stored certificates, soonest expiry first"),
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["Id", "Subject", "Issuer", "Not after", "Days left", "Labels", "SHA-256"].map((t) =>
                h("th", { scope: "col" }, t),
              ),
              role === "admin" ? h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")) : null,
            ),
          ),
          h("tbody", {}, shown.map(row)),
        ),
      ),
      all.length === 0
        ? h("p", {}, model.byId.size === 0 ? "No certificates stored yet." : "No certificate matches.")
        : null,
      pages > 1
        ? h(
            "nav",
            { class: "pager", "aria-label": "Pages" },
            nav("Previous page", page - 1, page === 0),
            ` Page ${page + 1} of ${pages} `,
            nav("Next page", page + 1, page >= pages - 1),
          )
        : null,
    );
  }
  render();
  return model.subscribe(render);
}
