// What a LoRA can be made for (GET /api/base-models, read from the API's one table): each base
// model's title, what its LoRA makes (pictures, or clips of which video models), what it learns
// from, and per provider what a training needs and what its steps cost. The create forms offer it
// as a choice; a LoRA's page offers only what its base model is used for.

import { api } from "./api.js";
import { el } from "./dom.js";
import { usd } from "./format.js";

const read = new Map(); // steps -> the answer's items (a promise), read once each

export function baseModels(steps = 1000) {
  if (!read.has(steps)) {
    read.set(steps, api("/api/base-models", { steps }).then((answer) => answer.items).catch((error) => {
      read.delete(steps);
      throw error;
    }));
  }
  return read.get(steps);
}

// The entry of `name` (a version's baseModel; "" from before the field: the default's).
export function baseOf(items, name) {
  return items.find((b) => b.name === name) || items.find((b) => b.default) || items[0];
}

// Whether a LoRA version makes clips, and which models load it.
export function isVideo(items, version) {
  return Boolean(version && baseOf(items, version.baseModel || "").video);
}

// What a training of `base` needs and costs on each provider that trains it, `chosen` (the
// provider the form runs with) marked first.
export function baseFacts(base, steps, chosen) {
  const ordered = [...base.providers].sort((a, b) => (b.provider === chosen) - (a.provider === chosen));
  const first = ordered[0] || {};
  return el("div", { class: "base-facts", id: "base-model-facts", "data-base": base.name, role: "status" },
    el("p", {}, el("b", {}, base.title), `: ${base.makes}.`),
    el("p", { class: "meta" }, `Learns from ${first.learnsFrom}.`),
    el("ul", { class: "meta" }, ordered.map((p) => el("li", { "data-provider": p.provider, "data-chosen": p.provider === chosen ? "" : undefined },
      `${p.provider}${p.provider === chosen ? " (this form's)" : ""}: ${p.placeholders ? "free" : `about ${usd(p.estimateUsd)} for ${steps} steps`}; needs ${p.needs}`))));
}
