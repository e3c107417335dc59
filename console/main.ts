import { role, store } from "./api.js";
import { h, replace } from "./dom.js";
import { createCertificateModel } from "./model.js";
import { auditPage } from "./pages/audit.js";
import { certificatesPage } from "./pages/certificates.js";
import { detailsPage } from "./pages/details.js";
import { expiryPage } from "./pages/expiry.js";
import { healthPage } from "./pages/health.js";
import { uploadPage } from "./pages/upload.js";

// The console: one page whose views follow the address's fragment
// (#/certificates, #/certificates/ID, #/upload, #/expiry, #/audit,
// #/health), so that the server serves a single document.
const who = role();
const model = createCertificateModel(store);
const main = document.getElementById("main") as HTMLElement;
const links: [string, string][] = [
  ["#/certificates", "Certificates"],
  ...(who === "admin" ? ([["#/upload", "Upload"]] as [string, string][]) : []),
  ["#/expiry", "Expiry"],
  ["#/audit", "Audit"],
  ["#/health", "Health"],
];
const nav = document.getElementById("nav") as HTMLElement;
replace(
  nav,
  h(
    "ul",
    {},
    links.map(([href, text]) => h("li", {}, h("a", { href }, text))),
  ),
);
replace(
  document.getElementById("role") as HTMLElement,
  who === "admin" ? "Signed in with an admin certificate" : "Signed in with a reader certificate (read only)",
);

let leave: () => void = () => {};

function route(): void {
  leave();
  const hash = location.hash === "" ? "#/certificates" : location.hash;
  const [path = "", search = ""] = hash.slice(1).split("?");
  const params = new URLSearchParams(search);
  const parts = path.split("/").filter((p) => p !== "");
  for (const a of nav.querySelectorAll("a")) {
    if (a.getAttribute("href") === `#/${parts[0] ?? "certificates"}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  model.start();
  switch (parts[0]) {
    case "upload":
      leave = who === "admin" ? uploadPage(main) : certificatesPage(main, model, who, { q: "", page: 0 });
      break;
    case "expiry":
      leave = expiryPage(main, model, params.get("by") === "month" ? "month" : "week");
      break;
    case "audit":
      leave = auditPage(main, {
        id: params.get("id") ?? "",
        from: params.get("from") ?? "",
        to: params.get("to") ?? "",
      });
      break;
    case "health":
      leave = healthPage(main, model);
      break;
    default:
      if (parts[1] !== undefined) {
        leave = detailsPage(main, model, who, decodeURIComponent(parts[1]));
      } else {
        leave = certificatesPage(main, model, who, {
          q: params.get("q") ?? "",
          from: params.get("from") ?? undefined,
          to: params.get("to") ?? undefined,
          page: Number(params.get("page") ?? 0) || 0,
        });
      }
  }
  document.title = `${main.querySelector("h1")?.textContent ?? "Console"} · certgate`;
}

window.addEventListener("hashchange", () => {
  route();
  // Keyboard and screen-reader users land on the new view's heading.
  main.querySelector<HTMLElement>("h1")?.focus();
});
route();
