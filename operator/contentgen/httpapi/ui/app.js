// contentgen web UI: a page over the catalog API (same origin, session cookie). Vanilla JS, no
// dependencies, no build step, nothing fetched from elsewhere. Every value from the API is put into
// the page as text (textContent), never as HTML.
// This module starts it; every view and shared piece is a module of its own (no build step). It
// hands the router its views, so no view's import of the router comes back to it in a circle.

import { collectionsView, collectionView } from "./collections.js";
import { createView } from "./create.js";
import { evaluationView } from "./evaluation.js";
import { gallery } from "./gallery.js";
import { imageView } from "./image.js";
import { jobs, jobView } from "./jobs.js";
import { loras, loraView } from "./loras.js";
import { notificationsView } from "./notifications.js";
import { route, useViews } from "./router.js";
import { search } from "./search.js";
import { showLogin, start } from "./signin.js";
import { spend } from "./spend.js";
import { config, session } from "./state.js";
import { transcripts, transcriptView } from "./transcripts.js";
import { videoView } from "./video.js";

// The view of each section (the location hash's first part), given the rest of the path.
useViews({
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
}, showLogin);

document.getElementById("search").addEventListener("submit", (event) => {
  event.preventDefault();
  const q = document.getElementById("search-q").value.trim();
  if (q) location.hash = `#/search?${new URLSearchParams({ q })}`;
});
document.getElementById("logout").addEventListener("click", async () => {
  if (session && session.via === "proxy" && config.logoutUrl) {
    location.href = config.logoutUrl;
    return;
  }
  await fetch("/ui/session", { method: "DELETE", credentials: "same-origin" });
  showLogin();
});
window.addEventListener("hashchange", route);
start();
