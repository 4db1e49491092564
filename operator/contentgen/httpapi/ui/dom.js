// Building the page: elements (every value as text, never HTML), SVG, notices, progress bars, copying.

import { timers } from "./state.js";

export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) { // nested lists (a list of [separator, link]) too
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// node's children become `children`, leaving out null, undefined and false (which the DOM's own
// replaceChildren would write as text).
export function put(node, ...children) {
  node.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

export function progressBar(percent, big, label) {
  const fill = el("div", {});
  fill.style.width = `${percent}%`; // CSSOM, which the page's CSP allows (style attributes it does not)
  return el("div", { class: big ? "progress big" : "progress", role: "progressbar", "aria-valuenow": percent, "aria-label": label || "progress" }, fill);
}

export function setProgress(bar, percent) {
  bar.firstChild.style.width = `${percent}%`;
  bar.setAttribute("aria-valuenow", percent);
}

// Copies `text`; the button says so. The Clipboard API where the browser allows it, else a
// selected textarea and execCommand (older browsers, plain http on another host).
export async function copyText(text, button) {
  let done = false;
  try {
    await navigator.clipboard.writeText(text);
    done = true;
  } catch (ignored) {
    const area = el("textarea", { class: "offscreen", readonly: true });
    area.value = text;
    document.body.append(area);
    area.select();
    try { done = document.execCommand("copy"); } catch (alsoIgnored) { done = false; }
    area.remove();
  }
  if (button) {
    const label = button.dataset.label || button.textContent;
    button.dataset.label = label;
    button.textContent = done ? "Copied" : "Select and copy";
    timers.add(setTimeout(() => { button.textContent = label; }, 1500));
  }
  return done;
}

export function copyButton(text, label, id) {
  return el("button", { type: "button", class: "copy", id, "data-copy": text, onclick: (e) => copyText(text, e.currentTarget) }, label || "Copy");
}

export function notice(target, text, isError) {
  const node = el("p", { class: isError ? "notice error" : "notice", role: "status" }, text);
  put(target, node);
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";

// `el` for SVG: the same attributes and children, in SVG's namespace.
export function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== undefined && value !== null && value !== false) node.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child !== undefined && child !== null && child !== false) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
