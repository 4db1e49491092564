// Loaded before the page's modules, as a classic script: a module that cannot be fetched (the
// connection dropped, the server restarted in the middle of a load) stops the whole page before
// any of it runs, which would leave it blank. This says so in words and offers the reload a person
// would do. It imports nothing and is the page's only script that is not a module.
"use strict";

window.addEventListener(
  "error",
  (event) => {
    const script = event.target;
    if (!(script instanceof HTMLScriptElement) || script.type !== "module") return;
    const say = () => {
      const main = document.getElementById("main");
      const box = document.createElement("section");
      const text = document.createElement("p");
      text.id = "error";
      text.className = "error";
      text.textContent =
        "Part of the page could not be loaded (the connection dropped, or the server restarted): " +
        "reload to try again.";
      const again = document.createElement("button");
      again.type = "button";
      again.textContent = "Reload";
      again.addEventListener("click", () => location.reload());
      box.append(text, again);
      main.replaceChildren(box);
      main.dataset.view = "unloaded";
      main.dataset.ready = "unloaded";
    };
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", say);
    else say();
  },
  true,
);
