import { errorText, store } from "../api.js";
import type { Candidate, FileEntry } from "../cert-files.js";
import { h, replace } from "../dom.js";
import { formatDate, parseLabels, shortThumbprint } from "../format.js";

// An id from a file name: "device-42.pem" -> "device-42", as ids allow.
function idFrom(name: string, index: number, count: number): string {
  const base = name
    .replace(/\.[^.]*$/, "")
    .replace(/[^A-Za-z0-9._-]+/g, "-")
    .replace(/^[.-]+/, "")
    .slice(0, 120);
  if (base === "") return "";
  return count > 1 ? `${base}-${index + 1}` : base;
}

let counter = 0;

/**
 * uploadPage takes files by drag and drop or a picker, shows each
 * certificate found with an editable id and labels, uploads only the
 * certificates' DER, and shows a result per certificate.
 */
export function uploadPage(main: HTMLElement): () => void {
  const input = h("input", {
    type: "file",
    id: "upload-input",
    multiple: true,
    class: "visually-hidden",
    accept: ".pem,.crt,.cer,.der,.p12,.pfx",
    "aria-label": "Upload certificates",
  });
  const list = h("div", { id: "upload-list" });
  const zone = h(
    "div",
    { class: "dropzone" },
    h(
      "p",
      {},
      "Drop certificate files here, or ",
      input,
      h("label", { for: "upload-input", class: "button" }, "choose files"),
    ),
    h(
      "p",
      { class: "hint" },
      "PEM (one certificate or a bundle), DER (.cer, .crt, .der) and PKCS#12 (.pfx, .p12). " +
        "Only certificates are uploaded: a private key in a file never leaves this browser.",
    ),
  );
  const uploadAll = h("button", { type: "button", class: "primary", disabled: true }, "Upload all");
  const items: { upload: () => Promise<void> }[] = [];
  uploadAll.addEventListener("click", async () => {
    uploadAll.disabled = true;
    for (const item of items.splice(0)) await item.upload();
  });
  replace(main, h("h1", { tabindex: "-1" }, "Upload certificates"), zone, list, h("p", {}, uploadAll));

  const addCandidates = (fileName: string, box: HTMLElement, candidates: Candidate[], notes: string[]) => {
    replace(
      box,
      h("h2", {}, fileName),
      notes.map((n) => h("p", { class: "note" }, n)),
      candidates.map((c, i) => {
        const n = ++counter;
        const id = h("input", { id: `id-${n}`, value: idFrom(fileName, i, candidates.length), autocomplete: "off" });
        const labels = h("input", { id: `labels-${n}`, placeholder: "team=payments, env=prod", autocomplete: "off" });
        const result = h("p", { class: "result", role: "status" });
        const card = h(
          "div",
          { class: "candidate" },
          h("p", { class: "dn" }, c.facts.subject),
          h(
            "p",
            {},
            `Expires ${formatDate(c.facts.notAfter)} · SHA-256 `,
            h("code", { title: c.sha256 }, shortThumbprint(c.sha256)),
          ),
          h("div", { class: "field" }, h("label", { for: `id-${n}` }, "Id"), id),
          h("div", { class: "field" }, h("label", { for: `labels-${n}` }, "Labels"), labels),
          result,
        );
        let done = false;
        items.push({
          async upload() {
            if (done) return;
            let parsed: Record<string, string>;
            try {
              parsed = parseLabels(labels.value);
            } catch (error) {
              replace(result, h("span", { class: "error" }, errorText(error)));
              items.push(this);
              uploadAll.disabled = false;
              return;
            }
            replace(result, "Uploading…");
            try {
              const { certificate } = await store.createCertificate({
                certificate: c.der,
                certificateId: id.value.trim(),
                labels: parsed,
              });
              done = true;
              id.disabled = true;
              labels.disabled = true;
              const stored = certificate?.certificateId ?? id.value;
              replace(
                result,
                h("span", { class: "ok" }, "Stored as "),
                h("a", { href: `#/certificates/${encodeURIComponent(stored)}` }, stored),
              );
            } catch (error) {
              replace(result, h("span", { class: "error" }, `Not stored: ${errorText(error)}`));
              items.push(this);
              uploadAll.disabled = false;
            }
          },
        });
        uploadAll.disabled = false;
        return card;
      }),
    );
  };

  const showEntry = (fileName: string, entry: FileEntry) => {
    const box = h("section", { class: "file", "aria-label": fileName });
    list.append(box);
    if (entry.kind === "problem") {
      replace(box, h("h2", {}, fileName), h("p", { class: "error" }, `Cannot read it: ${entry.reason}.`));
    } else if (entry.kind === "certificates") {
      addCandidates(fileName, box, entry.candidates, entry.notes);
    } else {
      const n = ++counter;
      const password = h("input", { type: "password", id: `pw-${n}`, autocomplete: "off" });
      const message = h("p", { role: "status" });
      const open = async () => {
        try {
          const { openPkcs12 } = await import("../cert-files.js");
          const found = await openPkcs12(entry.bytes, password.value);
          password.value = "";
          addCandidates(fileName, box, found, ["only the certificate is uploaded: the private key stays here"]);
        } catch (error) {
          replace(message, h("span", { class: "error" }, errorText(error)));
        }
      };
      password.addEventListener("keydown", (event) => {
        if ((event as KeyboardEvent).key === "Enter") void open();
      });
      replace(
        box,
        h("h2", {}, fileName),
        h(
          "div",
          { class: "field" },
          h("label", { for: `pw-${n}` }, `Password of ${fileName}`),
          password,
          h("button", { type: "button", onclick: () => void open() }, "Open"),
        ),
        message,
      );
    }
  };

  const take = async (files: FileList | null) => {
    // pkijs is loaded with the first page that needs it.
    const { readCertificateFile } = await import("../cert-files.js");
    for (const file of files ?? []) {
      const bytes = new Uint8Array(await file.arrayBuffer());
      showEntry(file.name, await readCertificateFile(file.name, bytes));
    }
  };
  input.addEventListener("change", () => {
    void take(input.files).then(() => {
      input.value = "";
    });
  });
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    void take((event as DragEvent).dataTransfer?.files ?? null);
  });
  return () => {};
}
