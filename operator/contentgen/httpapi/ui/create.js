// The create view: a form per kind that the API creates.

import { api, ref, send } from "./api.js";
import { el, notice, put } from "./dom.js";
import { filterValues } from "./filters.js";
import { field, input, inputFor, NAME_PATTERN, NAME_RULE } from "./forms.js";
import { creatable } from "./kinds.js";
import { creates } from "./parts.js";
import { config, created, main, session } from "./state.js";

// The spec a kind's form makes: what every kind has (owner, provider, tags, description) around
// the kind's own fields.
function specOf(maker, data) {
  const text = (name) => (data.get(name) || "").toString().trim();
  const number = (name) => (text(name) === "" ? undefined : Number(text(name)));
  const spec = {};
  if (text("owner")) spec.owner = text("owner");
  maker.spec(spec, { text, number, data });
  if (text("provider")) spec.provider = text("provider");
  const tags = text("tags").split(",").map((t) => t.trim()).filter(Boolean);
  if (tags.length) spec.tags = tags;
  if (text("description")) spec.description = text("description");
  return spec;
}

export async function createView(which) {
  const offered = creatable();
  const chosen = offered.find((k) => k.link === which) || offered[0];
  if (!chosen) throw new Error("The API's kinds could not be read (/openapi.json): reload the page.");
  const { kind, create: maker } = chosen;
  const { example } = maker;
  const values = filterValues();
  const tabs = el("div", { class: "tabs", role: "tablist", id: "create-tabs" }, offered.map((k) =>
    el("a", { role: "tab", class: "button", href: `#/create/${k.link}`, "aria-selected": String(k === chosen), "data-tab": k.link }, k.create.label)));
  if (!creates()) {
    put(main, el("h1", {}, "Create"), tabs,
      el("p", { class: "notice", id: "create-off" }, "This API does not create resources (CONTENTGEN_API_CREATE=off, or no Kubernetes API to create them in). Apply a manifest instead: ",
        el("code", {}, `kubectl apply -f examples/${example}`), ", or copy one from any record with Copy as manifest."));
    return;
  }
  let prefill = {};
  if (values.from) { // Edit and run: the version's settings
    const record = await api(`/api/jobs/${ref(values.from)}`);
    const version = record.versions.find((v) => String(v.version) === values.version) || record.versions[record.versions.length - 1];
    prefill = { ...((version && version.spec) || {}) };
  }
  const pick = (name, fallback) => values[name] ?? (prefill[name] !== undefined ? String(prefill[name]) : fallback);
  // An admin may act for any owner (a name to type); others choose among their own.
  const owners = session.admin
    ? field("Owner", [input("owner", { value: prefill.owner || session.owner, list: "owner-list", required: true }),
      el("datalist", { id: "owner-list" }, session.owners.map((o) => el("option", { value: o })))])
    : session.owners.length > 1
      ? field("Owner", el("select", { name: "owner", id: "f-owner" }, session.owners.map((o) => el("option", { value: o, selected: o === (prefill.owner || session.owner) }, o))))
      : null;
  const common = [
    field("Name (optional; the same name again is an idempotent repeat)", input("name", { placeholder: "a fresh name", maxlength: 253 }), false, NAME_RULE),
    field("Namespace", input("namespace", { value: values.namespace || config.defaultNamespace, required: true })),
    owners,
  ];
  const tail = [
    field("Tags (comma-separated)", input("tags", { value: values.tags || (prefill.tags || []).join(", ") })),
    field("Description", input("description", { value: pick("description", ""), maxlength: 1000 })),
  ];
  const fields = await maker.fields({ values, prefill, pick });
  const status = el("div", { id: "create-status" });
  const form = el("form", { class: "create", id: "create-form", "data-kind": kind, novalidate: true },
    ...fields, ...common, ...tail,
    el("div", { class: "buttons" }, el("button", { type: "submit", id: "create-submit" }, `Create ${kind}`),
      el("span", { class: "meta" }, config.create === "local" ? "runs on this machine, one at a time" : "created in the cluster; the operator runs it"), status));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const old of form.querySelectorAll(".field-error")) old.remove();
    for (const old of form.querySelectorAll(".invalid")) old.classList.remove("invalid");
    if (form.uploading) await form.uploading; // a file chosen is stored before the create names it
    const data = new FormData(form);
    const name = (data.get("name") || "").toString().trim();
    if (name && !NAME_PATTERN.test(name)) { // said in words before the API says it as a pattern
      const control = form.querySelector("[name=name]");
      control.classList.add("invalid");
      control.after(el("span", { class: "field-error", "data-field": "metadata.name" }, `metadata.name: ${NAME_RULE}`));
      notice(status, `The name “${name}” cannot be used: ${NAME_RULE}`, true).id = "create-error";
      return;
    }
    const metadata = { namespace: (data.get("namespace") || "").toString().trim() || undefined };
    if ((data.get("name") || "").toString().trim()) metadata.name = data.get("name").toString().trim();
    try {
      const made = await send("POST", "/api/resources", { kind, metadata, spec: specOf(maker, data) });
      created.add(made.jobId);
      location.hash = `#/job/${ref(made.jobId)}`;
    } catch (error) {
      notice(status, error.message, true).id = "create-error";
      for (const problem of error.fields || []) {
        const control = inputFor(form, problem.field || "");
        if (!control) continue;
        control.classList.add("invalid");
        control.after(el("span", { class: "field-error", "data-field": problem.field }, `${problem.field}: ${problem.message}`));
      }
    }
  });
  put(main, el("h1", {}, "Create"), tabs, form,
    el("p", { class: "meta" }, "Everything a manifest can say is in the API reference; ", el("code", {}, `kubectl apply -f examples/${example}`), " does the same."));
}
