// Routing: a view per location hash, what changes when it does. The views are the entry module's
// (app.js hands them over with useViews): the router imports none, so any view may import it.

import { closeDialog } from "./actions.js";
import { ApiFailure, ref } from "./api.js";
import { el, put } from "./dom.js";
import { filterValues } from "./filters.js";
import { closeLightbox } from "./overlay.js";
import { main, session, streams, timers } from "./state.js";

let views = {};
let signedOut = () => {};

// `table`: each section's view, given the rest of the path; `whenSignedOut`: what a 401 shows.
export function useViews(table, whenSignedOut) {
  views = table;
  signedOut = whenSignedOut;
}

function showError(error) {
  if (error instanceof ApiFailure && error.status === 401) {
    signedOut();
    return;
  }
  const text = error instanceof ApiFailure && error.status === 404 ? `Not found: ${error.message}` : error.message;
  put(main, el("p", { class: "error", id: "error" }, text));
}

export async function route() {
  for (const source of streams) source.close();
  streams.clear();
  for (const timer of timers) clearTimeout(timer);
  timers.clear();
  closeLightbox();
  closeDialog();
  if (!session) return;
  const path = (location.hash.replace(/^#\/?/, "").split("?")[0] || "gallery").split("/");
  const section = views[path[0]] ? path[0] : "gallery";
  for (const link of document.querySelectorAll("nav a")) link.classList.toggle("active", link.dataset.section === section);
  // The search box shows the words of the search on screen, and none elsewhere.
  document.getElementById("search-q").value = section === "search" ? (filterValues().q || "") : "";
  main.setAttribute("data-view", section);
  main.removeAttribute("data-ready");
  put(main, el("p", { class: "empty" }, "loading…"));
  try {
    await views[section](decodeURIComponent(path.slice(1).join("/")));
    main.setAttribute("data-ready", section);
  } catch (error) {
    showError(error);
  }
}

// The LoRA page again, on version `n`'s tab (after something changed it).
export async function showVersion(id, n) {
  const wanted = `#/lora/${ref(id)}?tab=v${n}`;
  if (location.hash === wanted) await route();
  else location.hash = wanted;
}
