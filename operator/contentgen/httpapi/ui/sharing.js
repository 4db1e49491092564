// Sharing and usage (docs/sharing.md): an asset's usage panel, grants, + Collection, asset cards.

import { closeDialog } from "./actions.js";
import { api, ref, send } from "./api.js";
import { el, notice, put } from "./dom.js";
import { bytes, usd, when } from "./format.js";
import { kindOf, linkOf } from "./kinds.js";
import { badge, recordThumb } from "./parts.js";
import { route } from "./router.js";
import { session } from "./state.js";

// An asset's usage: downloads, last access, storage and its monthly cost, where it was used,
// your collections that hold it, and, to its owner, whom it is shared with. Loaded after the
// page, into its own section.
export function usagePanel(record) {
  const box = el("section", { id: "usage", class: "usage" }, el("h2", {}, "Usage"), el("p", { class: "meta" }, "loading…"));
  api(`/api/assets/${ref(record.id)}/usage`).then((u) => {
    const used = u.usedIn.map((c) => el("li", {},
      el("a", { href: `#/${linkOf(c.kind) || "job"}/${ref(c.id)}` }, `${c.namespace}/${c.name}`),
      c.versions.length ? ` with ${c.versions.map((n) => `v${n}`).join(", ")}` : "", session.owners.includes(c.owner) ? "" : ` (${c.owner})`));
    const shares = (record.shares || []).map((s) => `${s.to} (${s.access})`).join(", ");
    put(box, el("h2", {}, "Usage"),
      el("dl", { class: "facts", id: "usage-facts" },
        el("dt", {}, "downloads"), el("dd", { id: "usage-downloads" }, String(u.downloads),
          u.versions.length > 1 ? ` (${u.versions.map((v) => `v${v.version}: ${v.downloads}`).join(", ")})` : ""),
        el("dt", {}, "last download"), el("dd", {}, u.lastDownloadedAt ? when(u.lastDownloadedAt) : "never"),
        el("dt", {}, "last access"), el("dd", {}, u.lastAccessedAt ? when(u.lastAccessedAt) : "never"),
        el("dt", {}, "storage"), el("dd", { id: "usage-storage" }, `${bytes(u.totalBytes)}, ${usd(u.monthlyStorageUsd)} a month`,
          el("span", { class: "meta" }, ` at ${usd(u.pricePerGbMonth)} per GB-month`)),
        el("dt", {}, "used in"), el("dd", { id: "usage-used" }, used.length ? el("ul", { class: "plain" }, used) : ((kindOf(record.kind) || {}).usable ? "nothing yet" : "-"),
          u.usedByOtherOwners ? el("p", { class: "meta" }, `and ${u.usedByOtherOwners} of other owners (shared with them)`) : null),
        el("dt", {}, "collections"), el("dd", {}, u.collections.length ? u.collections.map((c, i) => [i ? ", " : "", el("a", { href: `#/collection/${encodeURIComponent(c.id)}` }, c.name)]) : "-"),
        session.owners.includes(record.owner) || session.admin ? [el("dt", {}, "shared with"), el("dd", { id: "usage-shares" }, shares || "nobody")] : [el("dt", {}, "owner"), el("dd", {}, `${record.owner} (shared with you)`)]),
      session.owners.includes(record.owner) || session.admin ? shareForm(record) : null);
  }).catch((error) => put(box, el("h2", {}, "Usage"), el("p", { class: "error" }, error.message || String(error))));
  return box;
}

// Its owner shares it (or takes a grant back) from its page: a laptop's record keeps the grant;
// a cluster resource's answer is the kubectl command that shares it (docs/sharing.md).
function shareForm(record) {
  return grantsForm(record.shares, `/api/assets/${ref(record.id)}/shares`, "share");
}

// Grants (owner:NAME or group:NAME, read or use) of what `path` shares, each with Take back, and
// a form to give one; the ids start with `prefix` (share-form, collection-share-form).
export function grantsForm(shares, path, prefix) {
  const status = el("div", { id: `${prefix}-status` });
  const to = el("input", { name: "to", placeholder: "owner:NAME or group:NAME", pattern: "(owner|group):[^\\s,=]+", required: true, "aria-label": "Share with" });
  const access = el("select", { name: "access", "aria-label": "Access" },
    [["read", "read: see, download"], ["use", "use: in a loraRef, no files"]].map(([value, label]) => el("option", { value }, label)));
  const change = async (method, url, body) => {
    try {
      await send(method, url, body);
      await route();
    } catch (error) { notice(status, error.message || String(error), true); }
  };
  const grants = (shares || []).map((g) => el("li", {}, `${g.to} (${g.access}) `,
    el("button", { type: "button", onclick: () => change("DELETE", `${path}/${encodeURIComponent(g.to)}`) }, "Take back")));
  return el("div", { class: "share" },
    grants.length ? el("ul", { class: "plain", id: prefix === "share" ? "grants" : `${prefix}-grants` }, grants) : null,
    el("form", { id: `${prefix}-form`, class: "inline", onsubmit: (event) => {
      event.preventDefault();
      change("PUT", path, { to: to.value.trim(), access: access.value });
    } }, to, access, el("button", { type: "submit" }, "Share")),
    status);
}

// "+ Collection" on a card: add the record to one of the caller's collections, chosen in a dialog.
export function collectButton(record) {
  return el("button", { type: "button", class: "collect", "data-id": record.id, title: "Add to a collection",
    "aria-label": `Add ${record.namespace}/${record.name} to a collection`, onclick: () => collectDialog(record) }, "+ Collection");
}

async function collectDialog(record) {
  closeDialog();
  const status = el("div", { id: "collect-status" });
  const list = el("ul", { class: "plain collect-list", id: "collect-list" }, el("li", { class: "meta" }, "loading…"));
  const add = async (c) => {
    try {
      const after = await send("POST", `/api/collections/${encodeURIComponent(c.id)}/members`, { ref: record.id });
      put(status, el("p", { class: "notice", role: "status", id: "collect-done" }, `Added to ${c.name} (${after.memberCount} ${after.memberCount === 1 ? "asset" : "assets"}). `,
        el("a", { href: `#/collection/${encodeURIComponent(c.id)}`, onclick: closeDialog }, "Open it")));
    } catch (error) { notice(status, error.message || String(error), true); }
  };
  const name = el("input", { name: "name", required: true, pattern: "[0-9A-Za-z][0-9A-Za-z._-]*", maxlength: 100, placeholder: "a new collection", "aria-label": "New collection's name" });
  const make = el("form", { class: "inline", id: "collect-new", onsubmit: async (event) => {
    event.preventDefault();
    try { await add(await send("POST", "/api/collections", { name: name.value.trim(), description: "" })); await fill(); }
    catch (error) { notice(status, error.message || String(error), true); }
  } }, name, el("button", { type: "submit" }, "Make it and add"));
  const fill = async () => {
    const found = await api("/api/collections");
    const own = found.items.filter((c) => c.access === "owner");
    put(list, own.length ? own.map((c) => el("li", {}, el("button", { type: "button", class: "add-to", "data-collection": c.id, onclick: () => add(c) }, `Add to ${c.name}`),
      el("span", { class: "meta" }, ` ${c.memberCount} ${c.memberCount === 1 ? "asset" : "assets"}${c.description ? ` · ${c.description}` : ""}`)))
      : el("li", { class: "meta" }, "You have no collection yet: name one below."));
  };
  const dialog = el("div", { class: "dialog", id: "collect-dialog", role: "dialog", "aria-modal": "true", "aria-label": "Add to a collection" },
    el("div", {},
      el("h2", {}, `Add ${record.namespace}/${record.name} to a collection`),
      list, make, status,
      el("div", { class: "actions" }, el("button", { type: "button", id: "collect-close", onclick: closeDialog }, "Close"))));
  dialog.addEventListener("click", (event) => { if (event.target === dialog) closeDialog(); });
  dialog.addEventListener("keydown", (event) => { if (event.key === "Escape") closeDialog(); });
  document.body.append(dialog);
  try { await fill(); } catch (error) { put(list, el("li", { class: "error" }, error.message || String(error))); }
  dialog.querySelector("button").focus();
}

// A record as a card with its picture (what its latest version made, or a label of its kind where
// it made none): search results, a collection's members, assets to add to it.
export function assetCard(item, { below = null, actions = [] } = {}) {
  const link = `#/${linkOf(item.kind) || "job"}/${ref(item.id)}`;
  const picture = recordThumb(item);
  const about = item.prompt || item.triggerWord || item.description || "";
  return el("article", { class: "card asset-card", "data-id": item.id, "data-kind": item.kind },
    el("a", { href: link, class: "open", "aria-label": `${item.namespace}/${item.name}` },
      picture ? el("img", { class: "thumb", src: picture.src, alt: about || item.name, width: 240 })
        : el("div", { class: "thumb no-picture", "data-kind": item.kind }, item.type)),
    el("div", { class: "title" }, el("a", { href: link, class: "name" }, `${item.namespace}/${item.name}`)),
    el("div", { class: "meta" }, `${session.admin || !session.owners.includes(item.owner) ? `${item.owner} · ` : ""}${item.type}`, about ? ` · ${about}` : ""),
    below,
    el("div", { class: "card-actions" }, badge(item.status), actions));
}
