// Signing in and out: the session, the login form, the header that shows who.

import { closeDialog } from "./actions.js";
import { api, failure } from "./api.js";
import { el, put } from "./dom.js";
import { closeLightbox } from "./overlay.js";
import { creates } from "./parts.js";
import { route } from "./router.js";
import { loadSchema } from "./schema.js";
import { config, main, session, setConfig, setSession } from "./state.js";

function chrome(visible) {
  for (const id of ["nav", "search", "who"]) document.getElementById(id).hidden = !visible;
  // Log out only where there is a session to end: a token's cookie, or the proxy's sign-out page.
  const canLogOut = visible && session && (["token", "kubernetes"].includes(session.via) || (session.via === "proxy" && config.logoutUrl));
  document.getElementById("logout").hidden = !canLogOut;
}

export function showLogin() {
  setSession(null);
  chrome(false);
  closeLightbox();
  closeDialog();
  if (!config.tokens) {
    put(main, el("section", { class: "login" }, el("h1", {}, "Sign in"),
      el("p", { id: "login-proxy" }, "This server takes no tokens: sign in through the proxy in front of it, then reload this page.")));
    return;
  }
  put(main, document.getElementById("login-template").content.cloneNode(true));
  main.setAttribute("data-ready", "login");
  const form = document.getElementById("login-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const response = await fetch("/ui/session", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token: document.getElementById("token").value }),
    });
    if (!response.ok) {
      const failed = document.getElementById("login-error");
      failed.hidden = false;
      failed.textContent = response.status === 401 ? "Unknown token." : (await failure(response)).message;
      return;
    }
    await start();
  });
}

export async function start() {
  const settings = api("/ui/config").then(setConfig, () => { /* keep the defaults */ });
  await Promise.all([settings, loadSchema()]); // the kinds, models and sizes the views offer
  try {
    setSession(await api("/ui/session"));
  } catch (error) {
    showLogin();
    return;
  }
  chrome(true);
  document.getElementById("who").textContent = session.admin ? `${session.user} (admin)` : session.owners.join(", ");
  document.getElementById("nav-create").hidden = !creates();
  await route();
}
