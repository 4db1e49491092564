// The collections view and a collection's page.

import { api, send } from "./api.js";
import { el, notice, put } from "./dom.js";
import { filterValues } from "./filters.js";
import { route } from "./router.js";
import { assetCard, grantsForm } from "./sharing.js";
import { main } from "./state.js";

export async function collectionsView() {
  const found = await api("/api/collections");
  const status = el("div", { id: "collection-status" });
  const name = el("input", { name: "name", required: true, pattern: "[0-9A-Za-z][0-9A-Za-z._-]*", maxlength: 100, placeholder: "name", "aria-label": "Name" });
  const description = el("input", { name: "description", maxlength: 2000, placeholder: "what it is for", "aria-label": "Description" });
  const form = el("form", { id: "new-collection", class: "inline", onsubmit: async (event) => {
    event.preventDefault();
    try {
      const made = await send("POST", "/api/collections", { name: name.value.trim(), description: description.value.trim() });
      location.hash = `#/collection/${encodeURIComponent(made.id)}`;
    } catch (error) { notice(status, error.message || String(error), true); }
  } }, name, description, el("button", { type: "submit" }, "New collection"));
  const rows = found.items.map((c) => el("tr", { "data-id": c.id },
    el("td", { "data-label": "name" }, el("a", { href: `#/collection/${encodeURIComponent(c.id)}` }, c.name)),
    el("td", { "data-label": "owner" }, c.owner), el("td", { "data-label": "assets" }, String(c.memberCount)),
    el("td", { "data-label": "access" }, c.access === "owner" ? "yours" : `shared with you (${c.access})`),
    el("td", { "data-label": "about" }, c.description || "")));
  put(main, el("h1", {}, "Collections"), form, status,
    rows.length ? el("table", { id: "collections", class: "stack" }, rows)
      : el("p", { class: "empty", id: "empty" }, "No collection yet: name one above, then add assets on its page or with + Collection on a card in the gallery or the search."));
}

export async function collectionView(id) {
  const values = filterValues();
  const c = values.q ? await api(`/api/collections/${encodeURIComponent(id)}/search`, { q: values.q }) : await api(`/api/collections/${encodeURIComponent(id)}`);
  const status = el("div", { id: "collection-status" });
  const mine = c.access === "owner";
  const q = el("input", { type: "search", name: "q", value: values.q || "", placeholder: "Search within", "aria-label": "Search within" });
  const searchForm = el("form", { id: "collection-search", class: "inline", onsubmit: (event) => {
    event.preventDefault();
    location.hash = `#/collection/${encodeURIComponent(c.id)}${q.value.trim() ? `?${new URLSearchParams({ q: q.value.trim() })}` : ""}`;
  } }, q, el("button", { type: "submit" }, "Search"));
  // Assets to add: found by words (the search), each a card with an Add button.
  const words = el("input", { type: "search", name: "q", placeholder: "Find assets to add: words of a name, prompt or tag", "aria-label": "Find assets to add" });
  const found = el("div", { class: "grid", id: "add-candidates" });
  const addForm = mine ? el("form", { id: "add-member", class: "inline", onsubmit: async (event) => {
    event.preventDefault();
    if (!words.value.trim()) return;
    try {
      const page = await api("/api/assets/search", { q: words.value.trim(), limit: 12 });
      const inIt = new Set(c.items.map((item) => item.id));
      put(found, page.items.length ? page.items.map((item) => assetCard(item, { actions: inIt.has(item.id) ? el("span", { class: "meta" }, "in it") : el("button", { type: "button", class: "add", onclick: async () => {
        try { await send("POST", `/api/collections/${encodeURIComponent(c.id)}/members`, { ref: item.id }); await route(); }
        catch (error) { notice(status, error.message || String(error), true); }
      } }, "Add") })) : el("p", { class: "empty" }, "Nothing matches those words."));
    } catch (error) { notice(status, error.message || String(error), true); }
  } }, words, el("button", { type: "submit" }, "Find")) : null;
  const cards = c.items.map((item) => assetCard(item, { actions: mine ? el("button", { type: "button", class: "remove", onclick: async () => {
    try { await send("DELETE", `/api/collections/${encodeURIComponent(c.id)}/members/${encodeURIComponent(item.id)}`); await route(); }
    catch (error) { notice(status, error.message || String(error), true); }
  } }, "Remove") : null }));
  const shares = (c.shares || []).map((s) => `${s.to} (${s.access})`).join(", ");
  put(main, el("h1", {}, `Collection ${c.name}`),
    el("dl", { class: "facts" },
      el("dt", {}, "owner"), el("dd", {}, c.owner, mine ? "" : ` (shared with you: ${c.access})`),
      el("dt", {}, "about"), el("dd", {}, c.description || "-"),
      el("dt", {}, "assets"), el("dd", { id: "member-count" }, String(c.memberCount)),
      mine ? [el("dt", {}, "shared with"), el("dd", { id: "collection-shares" }, shares || "nobody")] : [],
      el("dt", {}, "download"), el("dd", {}, c.access === "use" ? "use only: no files"
        : el("a", { href: `/api/collections/${encodeURIComponent(c.id)}/archive`, id: "archive", download: `${c.name}.zip` }, "Download as zip"))),
    mine ? [el("h2", {}, "Share it"), grantsForm(c.shares, `/api/collections/${encodeURIComponent(c.id)}/shares`, "collection-share")] : null,
    el("h2", {}, values.q ? `Its assets matching “${values.q}”` : "Its assets"),
    searchForm, status,
    cards.length ? el("div", { class: "grid", id: "members" }, cards)
      : el("p", { class: "empty", id: "empty" }, values.q ? "No asset of it matches." : mine ? "No assets in it yet: find them below, or use + Collection on a card in the gallery or the search." : "No assets in it yet."),
    mine ? [el("h2", {}, "Add assets"), addForm, found] : null);
}
