// The lightbox over the view, as far as closing it goes: the router closes it when the view
// changes, signing out and a re-run close it too. It imports nothing, so the actions the lightbox
// offers (actions.js) close it without importing the lightbox, which imports them.

let lightboxKeys = null;

export function closeLightbox() {
  document.getElementById("lightbox")?.remove();
  if (lightboxKeys) document.removeEventListener("keydown", lightboxKeys);
  lightboxKeys = null;
}

// The keys an open lightbox answers (`keys`, a keydown listener), until it is closed.
export function listenWhileOpen(keys) {
  lightboxKeys = keys;
  document.addEventListener("keydown", keys);
}
