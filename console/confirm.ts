import { h } from "./dom.js";

/**
 * confirmDialog asks a yes-or-no question in a modal dialog (keyboard and
 * screen-reader friendly: focus moves in, Escape cancels) and resolves
 * with the answer.
 */
export function confirmDialog(title: string, text: string, yes: string): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (answer: boolean) => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    const cancel = h("button", { type: "button", onclick: () => done(false) }, "Cancel");
    const dialog = h(
      "dialog",
      { "aria-labelledby": "confirm-title", "aria-describedby": "confirm-text" },
      h("h2", { id: "confirm-title" }, title),
      h("p", { id: "confirm-text" }, text),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", class: "danger", onclick: () => done(true) }, yes),
        cancel,
      ),
    );
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      done(false);
    });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}
