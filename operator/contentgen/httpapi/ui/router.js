// Routing: a view per location hash, what changes when it does.

import { closeDialog } from "./actions.js";
import { ApiFailure } from "./api.js";
import { collectionsView, collectionView } from "./collections.js";
import { createView } from "./create.js";
import { el, put } from "./dom.js";
import { evaluationView } from "./evaluation.js";
import { filterValues } from "./filters.js";
import { gallery } from "./gallery.js";
import { imageView } from "./image.js";
import { jobs, jobView } from "./jobs.js";
import { closeLightbox } from "./lightbox.js";
import { loras, loraView } from "./loras.js";
import { notificationsView } from "./notifications.js";
import { search } from "./search.js";
import { showLogin } from "./signin.js";
import { spend } from "./spend.js";
import { main, session, streams, timers } from "./state.js";
import { transcripts, transcriptView } from "./transcripts.js";
import { videoView } from "./video.js";

function showError(error) {
  if (error instanceof ApiFailure && error.status === 401) {
    showLogin();
    return;
  }
  const text = error instanceof ApiFailure && error.status === 404 ? `Not found: ${error.message}` : error.message;
  put(main, el("p", { class: "error", id: "error" }, text));
}

const ROUTES = {
  gallery: () => gallery(),
  image: (id) => imageView(id),
  video: (id) => videoView(id),
  loras: () => loras(),
  lora: (id) => loraView(id),
  transcripts: () => transcripts(),
  transcript: (id) => transcriptView(id),
  jobs: () => jobs(),
  job: (id) => jobView(id),
  evaluation: (id) => evaluationView(id),
  search: () => search(),
  spend: () => spend(),
  create: (which) => createView(which),
  collections: () => collectionsView(),
  collection: (id) => collectionView(id),
  notifications: () => notificationsView(),
};

export async function route() {
  for (const source of streams) source.close();
  streams.clear();
  for (const timer of timers) clearTimeout(timer);
  timers.clear();
  closeLightbox();
  closeDialog();
  if (!session) return;
  const path = (location.hash.replace(/^#\/?/, "").split("?")[0] || "gallery").split("/");
  const section = ROUTES[path[0]] ? path[0] : "gallery";
  for (const link of document.querySelectorAll("nav a")) link.classList.toggle("active", link.dataset.section === section);
  // The search box shows the words of the search on screen, and none elsewhere.
  document.getElementById("search-q").value = section === "search" ? (filterValues().q || "") : "";
  main.setAttribute("data-view", section);
  main.removeAttribute("data-ready");
  put(main, el("p", { class: "empty" }, "loading…"));
  try {
    await ROUTES[section](decodeURIComponent(path.slice(1).join("/")));
    main.setAttribute("data-ready", section);
  } catch (error) {
    showError(error);
  }
}
