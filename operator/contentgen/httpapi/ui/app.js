// contentgen web UI: a page over the catalog API (same origin, session cookie). Vanilla JS, no
// dependencies, no build step, nothing fetched from elsewhere. Every value from the API is put into
// the page as text (textContent), never as HTML.
// This module starts it; every view and shared piece is a module of its own (no build step).

import { route } from "./router.js";
import { showLogin, start } from "./signin.js";
import { config, session } from "./state.js";

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
