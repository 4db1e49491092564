// A list's filters and pages, in the API's vocabulary (status, since, until, model, tag, owner, ...).

import { el } from "./dom.js";
import { IMAGES } from "./kinds.js";
import { recordTypes } from "./schema.js";
import { session } from "./state.js";

export function filterValues() {
  const hash = location.hash.split("?")[1] || "";
  return Object.fromEntries(new URLSearchParams(hash));
}

export function isFiltered(values) {
  return Object.keys(values).some((k) => !["offset", "limit"].includes(k) && values[k]);
}

export function filterForm(section, fields) {
  const values = filterValues();
  const inputs = {
    type: () => el("select", { name: "type" }, el("option", { value: "" }, "all kinds"),
      recordTypes().map((t) => el("option", { value: t, selected: values.type === t }, t))),
    status: () => el("select", { name: "status" }, el("option", { value: "" }, "any but Deleted"),
      ["Pending", "Running", "Succeeded", "Failed", "Interrupted", "Deleted"].map((s) => el("option", { value: s, selected: values.status === s }, s))),
    run: () => el("select", { name: "run" }, el("option", { value: "" }, "any latest run"),
      ["Pending", "Running", "Succeeded", "Failed", "Cancelled", "Interrupted"].map((s) => el("option", { value: s, selected: values.run === s }, s))),
    since: () => el("input", { name: "since", type: "date", value: values.since || "" }),
    until: () => el("input", { name: "until", type: "date", value: values.until || "" }),
    model: () => el("select", { name: "model" }, el("option", { value: "" }, "any model"),
      IMAGES.choices("model").map((m) => el("option", { value: m, selected: values.model === m }, m))),
    tag: () => el("input", { name: "tag", value: values.tag || "", size: 10 }),
    media: () => el("select", { name: "media", id: "filter-media" }, el("option", { value: "" }, "images and videos"),
      ["images", "videos"].map((m) => el("option", { value: m, selected: values.media === m }, m))),
    owner: () => el("input", { name: "owner", value: values.owner || "", size: 10, placeholder: "everyone" }),
  };
  const shown = session && session.admin ? [...fields, "owner"] : fields;
  const form = el("form", { class: "filters", id: "filters" },
    shown.map((name) => el("label", {}, name, inputs[name]())),
    el("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    for (const [key, value] of new FormData(form)) if (value) query.set(key, value);
    location.hash = `#/${section}${query.toString() ? "?" + query : ""}`; // a new filter starts at page 1
  });
  return form;
}

export function pager(section, page) {
  if (page.total <= page.limit && page.offset === 0) return null;
  const values = filterValues();
  const link = (offset, label, rel) => {
    const query = new URLSearchParams({ ...values, offset: String(offset) });
    if (!offset) query.delete("offset");
    return el("a", { class: "button", href: `#/${section}${query.toString() ? "?" + query : ""}`, rel }, label);
  };
  const last = Math.min(page.offset + page.items.length, page.total);
  return el("nav", { class: "pager", "aria-label": "pages" },
    page.offset > 0 ? link(Math.max(0, page.offset - page.limit), "← Newer", "prev") : null,
    el("span", { class: "range" }, `${page.items.length ? page.offset + 1 : 0}–${last} of ${page.total}`),
    last < page.total ? link(page.offset + page.limit, "Older →", "next") : null);
}
