// The search view: records and transcript passages matching words.

import { api } from "./api.js";
import { el, put } from "./dom.js";
import { filterForm, filterValues, pager } from "./filters.js";
import { clock } from "./format.js";
import { assetCard, collectButton } from "./sharing.js";
import { main, PAGE } from "./state.js";

// A snippet with the words searched for marked.
function snippet(hit) {
  const parts = [];
  let at = 0;
  for (const [start, end] of hit.highlights) {
    if (start < at) continue;
    parts.push(hit.snippet.slice(at, start), el("mark", {}, hit.snippet.slice(start, end)));
    at = end;
  }
  parts.push(hit.snippet.slice(at));
  return parts;
}

export async function search() {
  const values = filterValues();
  const page = await api("/api/assets/search", { ...values, limit: PAGE.list });
  const hitsOf = Object.fromEntries((page.hits || []).map((h) => [h.id, h]));
  // Each transcript hit: its time, a link that plays from there, the words around it.
  const said = (item) => ((hitsOf[item.id] || {}).transcript || []).map((hit) => el("li", { class: "said" },
    el("a", { class: "time", href: hit.link.replace(/^\/?/, ""), title: "Play from here" }, hit.atSeconds === null ? "--:--" : clock(hit.atSeconds)),
    hit.version > 1 ? ` v${hit.version} ` : " ", ...snippet(hit)));
  const cards = page.items.map((item) => assetCard(item, {
    below: said(item).length ? el("ul", { class: "snippets" }, said(item)) : null,
    actions: collectButton(item),
  }));
  put(main, 
    el("h1", {}, `Search: ${values.q || ""}`),
    filterForm("search", ["type", "status", "tag", "since", "until"]),
    cards.length ? el("div", { class: "grid", id: "results" }, cards) : el("p", { class: "empty", id: "empty" }, "Nothing matches. Words and \"phrases\" must all occur, as whole words, in a name, tag, description, prompt, trigger word or transcript."),
    pager("search", page),
  );
  // Keep the words when the filters change.
  document.getElementById("filters").append(el("input", { type: "hidden", name: "q", value: values.q || "" }));
}
