// Acting on a record: re-run, new seed, copy as manifest, cancel, delete.

import { apiText, ref, send } from "./api.js";
import { copyText, el, notice, put } from "./dom.js";
import { kindOf } from "./kinds.js";
import { closeLightbox } from "./overlay.js";
import { createOffTitle, creates } from "./parts.js";
import { created } from "./state.js";

export async function rerun(record, version, newSeed, status) {
  try {
    const made = await send("POST", `/api/jobs/${ref(record.id)}/rerun`, { version: version || undefined, newSeed: newSeed || undefined });
    created.add(made.jobId);
    closeLightbox();
    location.hash = `#/job/${ref(made.jobId)}`;
  } catch (error) {
    if (status) notice(status, error.message, true);
    else throw error;
  }
}

export function closeDialog() {
  for (const dialog of document.querySelectorAll(".dialog")) dialog.remove();
}

// A dialog that says what an action does, keeps or costs (`said`: its paragraphs) and acts only
// when confirmed: `act(note)` (with `note`, a text box whose words go with it, as the CLI's --note).
// Escape, Cancel or a click beside it closes it without acting.
export function confirmDialog({ id, title, said, confirm, act, note = false }) {
  closeDialog();
  const words = note ? el("textarea", { id: `${id}-note`, name: "note", rows: 2, maxlength: 500, placeholder: "why (optional, kept with it)" }) : null;
  const button = el("button", { type: "submit", class: "primary", id: `${id}-confirm` }, confirm);
  const form = el("form", { id: `${id}-form`, onsubmit: async (event) => {
    event.preventDefault();
    button.disabled = true;
    await act(words ? words.value.trim() : "");
  } },
    el("h2", { id: `${id}-title` }, title),
    said.map((line) => el("p", { class: "meta" }, line)),
    words ? [el("label", { for: `${id}-note` }, "Note"), words] : null,
    el("div", { class: "actions" }, button, el("button", { type: "button", id: `${id}-cancel`, onclick: closeDialog }, "Cancel")));
  const dialog = el("div", { class: "dialog", id, role: "dialog", "aria-modal": "true", "aria-labelledby": `${id}-title` }, el("div", {}, form));
  dialog.addEventListener("click", (event) => { if (event.target === dialog) closeDialog(); });
  dialog.addEventListener("keydown", (event) => { if (event.key === "Escape") closeDialog(); });
  document.body.append(dialog);
  (words || button).focus();
  return dialog;
}

// The version's settings as a manifest `kubectl apply -f -` takes as it is (fresh: under a new name).
export async function showManifest(record, version, status) {
  closeDialog();
  const pre = el("pre", { id: "manifest-yaml", tabindex: "0" }, "loading…");
  const keep = el("input", { type: "checkbox", id: "manifest-keep-name" });
  const copy = el("button", { type: "button", class: "primary", id: "manifest-copy" }, "Copy");
  const warning = el("p", { class: "notice", id: "manifest-warning", hidden: true });
  const load = async () => {
    try {
      pre.textContent = await apiText(`/api/assets/${ref(record.id)}/manifest`, { version: version || undefined, fresh: keep.checked ? undefined : "true" });
    } catch (error) {
      pre.textContent = error.message;
      return;
    }
    // A laptop's run may have read a local file: a cluster cannot (admission refuses the path).
    const local = [...pre.textContent.matchAll(/^\s*url: *['"]?([^'"\n]+)/gm)].map((m) => m[1]).filter((u) => !/^(https?|s3):\/\//.test(u));
    warning.hidden = !local.length;
    warning.textContent = local.length ? `source.url ${local[0]} is a file on the machine that ran it: a cluster takes only an http(s):// or s3:// URL, so put the file there and change the URL before applying.` : "";
    await copyText(pre.textContent, copy);
  };
  keep.addEventListener("change", load);
  copy.addEventListener("click", () => copyText(pre.textContent, copy));
  const dialog = el("div", { class: "dialog", id: "manifest-dialog", role: "dialog", "aria-modal": "true", "aria-label": "Manifest" },
    el("div", {},
      el("h2", {}, `${record.kind} ${record.namespace}/${record.name}${version ? ` v${version}` : ""} as a manifest`),
      el("p", { class: "meta" }, "Apply it with ", el("code", {}, "kubectl apply -f -"), " (paste, then Ctrl-D), or save it into your GitOps repository."),
      el("label", { class: "meta" }, keep, " keep the name (applied where the resource exists, it runs these settings as its next version)"),
      warning, pre,
      el("div", { class: "actions" }, copy, el("button", { type: "button", id: "manifest-close", onclick: closeDialog }, "Close"))));
  dialog.addEventListener("click", (event) => { if (event.target === dialog) closeDialog(); });
  document.body.append(dialog);
  await load();
  if (status) put(status, );
}

export function recordActions(record, version, status) {
  const { seeded, editable, link } = kindOf(record.kind) || {};
  const running = ["Pending", "Running"].includes(record.latestRun.phase);
  return el("div", { class: "actions", id: "record-actions" },
    el("button", { type: "button", id: "rerun", disabled: !creates(), title: createOffTitle(), onclick: () => rerun(record, version, false, status) }, "Re-run"),
    seeded ? el("button", { type: "button", id: "new-seed", disabled: !creates(), title: createOffTitle(), onclick: () => rerun(record, version, true, status) }, "Same settings, new seed") : null,
    el("button", { type: "button", id: "copy-manifest", onclick: () => showManifest(record, version, status) }, "Copy as manifest"),
    editable && creates() ? el("a", { class: "button", href: `#/create/${link}?${new URLSearchParams({ from: record.id, version: version || "" })}` }, "Edit and run") : null,
    running && creates() ? el("button", { type: "button", class: "danger", id: "cancel", onclick: () => act(record, "cancel", status) }, "Cancel run") : null,
    creates() && !record.deleted ? el("button", { type: "button", class: "danger", id: "delete", onclick: () => act(record, "delete", status) }, "Delete") : null);
}

async function act(record, action, status) {
  const question = action === "cancel" ? `Stop the run of ${record.namespace}/${record.name}?`
    : `Delete ${record.kind} ${record.namespace}/${record.name}? Its deletionPolicy decides whether its outputs stay.`;
  if (!window.confirm(question)) return;
  try {
    const done = action === "cancel"
      ? await send("POST", `/api/jobs/${ref(record.id)}/cancel`)
      : await send("DELETE", `/api/jobs/${ref(record.id)}`);
    notice(status, done.message);
  } catch (error) {
    notice(status, error.message, true);
  }
}
