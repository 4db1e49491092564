// The page's shared state: the view's element, its streams and timers, who is signed in, the server's settings.

export const main = document.getElementById("main");
export const streams = new Set(); // EventSources of the current view, closed when it changes
export const timers = new Set(); // timeouts of the current view, cleared when it changes
export const created = new Set(); // ids this page just created (their record may not be written yet)
export let session = null;
export let config = { create: "off", tokens: true, logoutUrl: "", defaultNamespace: "default", offline: false, providers: {} };

// Modules that import session and config read them live; only these change them.
export function setSession(value) {
  session = value;
}

export function setConfig(value) {
  config = value;
}
export const PAGE = { gallery: 24, list: 25 };
