import { h, replace, svg } from "../dom.js";
import { dateOf } from "../format.js";
import type { CertificateModel } from "../model.js";

const day = 86_400_000;

interface Bucket {
  /** First day of the period, YYYY-MM-DD (UTC). */
  from: string;
  /** First day after it. */
  to: string;
  label: string;
  expired: number;
  soon: number;
  later: number;
}

const iso = (t: number) => new Date(t).toISOString().slice(0, 10);

// Weeks start on Monday (ISO), months on the 1st, both in UTC.
function periodOf(time: number, by: "week" | "month"): { from: number; to: number; label: string } {
  const d = new Date(time);
  if (by === "month") {
    const from = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
    const to = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
    return { from, to, label: new Date(from).toISOString().slice(0, 7) };
  }
  const midnight = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  const from = midnight - ((d.getUTCDay() + 6) % 7) * day;
  return { from, to: from + 7 * day, label: `week of ${iso(from)}` };
}

/**
 * expiryPage charts the certificates by the week or month they expire:
 * expired and expiring within 30 days marked, each bar a link to the table
 * filtered to its period, and a table as the text alternative. Only periods
 * in which something expires are shown, so that a certificate valid for ten
 * years does not stretch the chart.
 */
export function expiryPage(main: HTMLElement, model: CertificateModel, by: "week" | "month"): () => void {
  const chart = h("div", { id: "chart" });
  const switcher = h(
    "p",
    { class: "switch" },
    "Group by ",
    h("a", { href: "#/expiry?by=week", "aria-current": by === "week" ? "page" : undefined }, "week"),
    " · ",
    h("a", { href: "#/expiry?by=month", "aria-current": by === "month" ? "page" : undefined }, "month"),
  );
  replace(main, h("h1", { tabindex: "-1" }, "Expiry"), switcher, chart);
  const render = () => {
    const now = Date.now();
    const buckets = new Map<number, Bucket>();
    for (const c of model.byId.values()) {
      const end = dateOf(c.notAfter)?.getTime();
      if (end === undefined) continue;
      const p = periodOf(end, by);
      let b = buckets.get(p.from);
      if (b === undefined) {
        b = { from: iso(p.from), to: iso(p.to), label: p.label, expired: 0, soon: 0, later: 0 };
        buckets.set(p.from, b);
      }
      if (end < now) b.expired++;
      else if (end - now <= 30 * day) b.soon++;
      else b.later++;
    }
    const list = [...buckets.entries()].sort((a, b) => a[0] - b[0]).map(([, b]) => b);
    if (list.length === 0) {
      replace(chart, h("p", {}, model.loaded ? "No certificates stored yet." : "Loading…"));
      return;
    }
    const max = Math.max(...list.map((b) => b.expired + b.soon + b.later));
    const barWidth = 48;
    const height = 200;
    const width = list.length * (barWidth + 12) + 12;
    const axis = 18;
    const bars = list.map((b, i) => {
      const total = b.expired + b.soon + b.later;
      const x = 12 + i * (barWidth + 12);
      let y = height;
      const segment = (count: number, cls: string) => {
        if (count === 0) return null;
        const hgt = Math.max(2, Math.round((count / max) * (height - 20)));
        y -= hgt;
        return svg("rect", { x, y, width: barWidth, height: hgt, class: cls });
      };
      const parts = [segment(b.expired, "bar-expired"), segment(b.soon, "bar-soon"), segment(b.later, "bar-later")];
      return svg(
        "a",
        { href: `#/certificates?from=${b.from}&to=${b.to}`, "aria-label": `${b.label}: ${describe(b, total)}` },
        svg("title", {}, `${b.label}: ${describe(b, total)}`),
        parts,
        svg("text", { x: x + barWidth / 2, y: y - 4, "text-anchor": "middle", class: "bar-count" }, String(total)),
        svg(
          "text",
          { x: x + barWidth / 2, y: height + 14, "text-anchor": "middle", class: "bar-label", "aria-hidden": "true" },
          by === "month" ? b.label : b.from.slice(5),
        ),
      );
    });
    replace(
      chart,
      h(
        "ul",
        { class: "legend" },
        h("li", { class: "legend-expired" }, "expired"),
        h("li", { class: "legend-soon" }, "expires within 30 days"),
        h("li", { class: "legend-later" }, "later"),
      ),
      h(
        "div",
        { class: "chart-wrap" },
        svg(
          "svg",
          {
            width,
            height: height + axis,
            viewBox: `0 0 ${width} ${height + axis}`,
            role: "group",
            "aria-label": "Certificates by expiry",
          },
          bars,
        ),
      ),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "chart-table" },
          h("caption", {}, `Certificates by the ${by} they expire (text of the chart)`),
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["Period", "Expired", "Within 30 days", "Later", "Certificates"].map((t) => h("th", { scope: "col" }, t)),
            ),
          ),
          h(
            "tbody",
            {},
            list.map((b) =>
              h(
                "tr",
                {},
                h("th", { scope: "row" }, h("a", { href: `#/certificates?from=${b.from}&to=${b.to}` }, b.label)),
                h("td", {}, String(b.expired)),
                h("td", {}, String(b.soon)),
                h("td", {}, String(b.later)),
                h("td", {}, String(b.expired + b.soon + b.later)),
              ),
            ),
          ),
        ),
      ),
    );
  };
  render();
  return model.subscribe(render);
}

function describe(b: Bucket, total: number): string {
  const parts = [`${total} certificate${total === 1 ? "" : "s"}`];
  if (b.expired > 0) parts.push(`${b.expired} expired`);
  if (b.soon > 0) parts.push(`${b.soon} within 30 days`);
  return parts.join(", ");
}
