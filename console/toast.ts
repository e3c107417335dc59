import { h } from "./dom.js";

/** toast announces a result in the page's live region. */
export function toast(text: string, isError = false): void {
  const region = document.getElementById("status");
  if (region === null) return;
  region.replaceChildren(h("p", { class: isError ? "error" : "ok" }, text));
}
