// contentgen web UI: a page over the catalog API (same origin, session cookie). Vanilla JS, no
// dependencies, no build step, nothing fetched from elsewhere. Every value from the API is put into
// the page as text (textContent), never as HTML.
"use strict";

const main = document.getElementById("main");
const streams = new Set(); // EventSources of the current view, closed when it changes
const timers = new Set(); // timeouts of the current view, cleared when it changes
const created = new Set(); // ids this page just created (their record may not be written yet)
let session = null;
let config = { create: "off", tokens: true, logoutUrl: "", defaultNamespace: "default", offline: false };
const PAGE = { gallery: 24, list: 25 };
// A record's own page (a LoraEvaluation's: its score, its grid and its LoRA version).
const KIND_LINK = { LoraTraining: "lora", ImageGeneration: "image", Transcription: "transcript", LoraEvaluation: "evaluation", VideoGeneration: "video" };
const SIZES = ["square_hd", "square", "portrait_4_3", "portrait_16_9", "landscape_4_3", "landscape_16_9"];
const MODELS = ["flux-pro", "flux-dev", "flux-schnell", "flux-lora"];

// --- helpers --------------------------------------------------------------------------------

function el(tag, attrs, ...children) {
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
function put(node, ...children) {
  node.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

class ApiFailure extends Error {
  constructor(status, code, message, fields) {
    super(message);
    this.status = status;
    this.code = code;
    this.fields = fields || [];
  }
}

async function failure(response) {
  let code = "error";
  let message = `${response.status} ${response.statusText}`;
  let fields = [];
  try {
    const body = await response.json();
    code = body.error.code;
    message = body.error.message;
    fields = body.error.fields || [];
  } catch (ignored) { /* not JSON */ }
  return new ApiFailure(response.status, code, message, fields);
}

function withQuery(path, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") query.set(key, value);
  }
  return query.toString() ? `${path}?${query}` : path;
}

async function api(path, params) {
  const response = await fetch(withQuery(path, params), { credentials: "same-origin" });
  if (!response.ok) throw await failure(response);
  return response.json();
}

async function apiText(path, params) {
  const response = await fetch(withQuery(path, params), { credentials: "same-origin" });
  if (!response.ok) throw await failure(response);
  return response.text();
}

async function send(method, path, body) {
  const response = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw await failure(response);
  return response.status === 204 ? null : response.json();
}

function ref(id) {
  return encodeURIComponent(id);
}

// The path of a stored file as the content route takes it: its last `parts` path segments.
function fileOf(uri, parts) {
  return uri.split("?")[0].split("/").slice(-parts).join("/");
}

// `version`: the version the file belongs to (image_1.png is in every version of a record).
function contentUrl(id, uri, parts, download, version) {
  const query = new URLSearchParams({ file: fileOf(uri, parts) });
  if (version) query.set("version", version);
  if (download) query.set("download", "true");
  return `/api/assets/${ref(id)}/content?${query}`;
}

// The version a stored output's URI names (…/v3/…); undefined for unversioned ones (before versions).
function versionOf(uri) {
  const found = uri.split("?")[0].match(/\/v(\d+)\//g);
  return found ? Number(found[found.length - 1].slice(2, -1)) : undefined;
}

function thumbOf(id, image, version) {
  return image.thumbnailUri ? contentUrl(id, image.thumbnailUri, 2, false, version) : contentUrl(id, image.uri, 1, false, version);
}

function badge(status) {
  return el("span", { class: `badge status-${status}`, "data-status": status }, status);
}

// The latest run, apart from the record's status: "Running 42 % dataset", "Failed: InvalidInput".
function runBadge(run) {
  const text = run.phase === "Failed" && run.error ? `run Failed: ${run.error.reason}` : `run ${run.phase}`;
  return el("span", { class: `badge run status-${run.phase}`, "data-run": run.phase }, text);
}

// Why a run waits (Pending) or failed: its reason and message, in words.
function waits(run) {
  if (!run) return null;
  if (run.phase === "Pending" && (run.reason || run.message)) {
    return el("span", { class: "waits", "data-reason": run.reason || "" }, "waits: ", el("b", {}, run.reason || "Pending"),
      run.message ? ` — ${run.message}` : "");
  }
  // Failed: its message (the run's badge names the reason), where there is one to add.
  if (run.phase === "Failed" && run.error && run.error.message && run.error.message !== run.error.reason) {
    return el("span", { class: "waits", "data-reason": run.error.reason }, run.error.message);
  }
  return null;
}

// The latest run in a line: its badge, its message and why it waits or failed, each said once.
// A warm pool's request (latestRun.pool): the pool's state, and the request's place in its queue.
const POOL_STATES = {
  starting: "pool starting (scaled to zero, or its pods loading)",
  loading: "pool loading its model",
  drawing: "drawing in the pool",
};
function poolPlace(run) {
  if (!run.pool) return null;
  const { state, position } = run.pool;
  const text = state === "queued" ? `queued in the pool: #${position}` : POOL_STATES[state] || `pool ${state}`;
  return el("span", { class: "pool", "data-pool": state }, ` · ${text}`);
}

function runFacts(run) {
  const why = waits(run);
  const message = run.message && !(why && why.textContent.includes(run.message)) ? ` ${run.message}` : "";
  return [runBadge(run), message, why, poolPlace(run)];
}

function when(text) {
  return text ? text.replace("T", " ").replace(/:\d\d(\.\d+)?Z$/, " UTC") : "-";
}

function usd(value) {
  if (value === null || value === undefined) return "-";
  if (value > 0 && value < 0.00005) return "under $0.0001"; // something costs: not "$0.0000"
  return `$${Number(value).toFixed(value && Math.abs(value) < 0.1 ? 4 : 2)}`;
}

function bytes(size) {
  const units = ["B", "KiB", "MiB", "GiB"];
  let value = size || 0;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit ? `${value.toFixed(1)} ${units[unit]}` : `${value} B`;
}

function clock(seconds) {
  const total = Math.max(0, Math.floor(seconds));
  const h = Math.floor(total / 3600);
  const m = String(Math.floor((total % 3600) / 60)).padStart(2, "0");
  const s = String(total % 60).padStart(2, "0");
  return h ? `${h}:${m}:${s}` : `${m}:${s}`;
}

function downloadButton(id, uri, parts, label, version) {
  return el("a", { class: "button download", href: contentUrl(id, uri, parts, true, version), download: "" }, label);
}

function progressBar(percent, big, label) {
  const fill = el("div", {});
  fill.style.width = `${percent}%`; // CSSOM, which the page's CSP allows (style attributes it does not)
  return el("div", { class: big ? "progress big" : "progress", role: "progressbar", "aria-valuenow": percent, "aria-label": label || "progress" }, fill);
}

function setProgress(bar, percent) {
  bar.firstChild.style.width = `${percent}%`;
  bar.setAttribute("aria-valuenow", percent);
}

// Copies `text`; the button says so. The Clipboard API where the browser allows it, else a
// selected textarea and execCommand (older browsers, plain http on another host).
async function copyText(text, button) {
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

function copyButton(text, label, id) {
  return el("button", { type: "button", class: "copy", id, "data-copy": text, onclick: (e) => copyText(text, e.currentTarget) }, label || "Copy");
}

function showError(error) {
  if (error instanceof ApiFailure && error.status === 401) {
    showLogin();
    return;
  }
  const text = error instanceof ApiFailure && error.status === 404 ? `Not found: ${error.message}` : error.message;
  put(main, el("p", { class: "error", id: "error" }, text));
}

function notice(target, text, isError) {
  const node = el("p", { class: isError ? "notice error" : "notice", role: "status" }, text);
  put(target, node);
  return node;
}

// What to do when a list is empty: the form that makes the first one, or the manifest to apply.
function emptyState(what, kind, example, filtered) {
  if (filtered) return el("p", { class: "empty", id: "empty" }, `No ${what} match these filters. `, el("a", { href: `#/${location.hash.slice(2).split("?")[0]}` }, "Clear the filters"));
  const make = config.create !== "off"
    ? [el("a", { class: "button primary", href: `#/create/${kind}` }, `Make the first`), " or apply a manifest: "]
    : ["Make the first with a manifest: "];
  return el("div", { class: "empty", id: "empty" },
    el("p", {}, `No ${what} yet.`),
    el("p", {}, ...make, el("code", {}, `kubectl apply -f examples/${example}`),
      config.create === "local" ? [" (on this laptop: ", el("code", {}, `contentgen run examples/${example}`), ")"] : ""));
}

// --- filters and paging (the API's vocabulary: status, since, until, model, tag, owner, ...) ----

function filterValues() {
  const hash = location.hash.split("?")[1] || "";
  return Object.fromEntries(new URLSearchParams(hash));
}

function isFiltered(values) {
  return Object.keys(values).some((k) => !["offset", "limit"].includes(k) && values[k]);
}

function filterForm(section, fields) {
  const values = filterValues();
  const inputs = {
    type: () => el("select", { name: "type" }, el("option", { value: "" }, "all kinds"),
      ["lora-training", "image-generation", "transcription", "lora-evaluation", "video-generation"].map((t) => el("option", { value: t, selected: values.type === t }, t))),
    status: () => el("select", { name: "status" }, el("option", { value: "" }, "any but Deleted"),
      ["Pending", "Running", "Succeeded", "Failed", "Deleted"].map((s) => el("option", { value: s, selected: values.status === s }, s))),
    run: () => el("select", { name: "run" }, el("option", { value: "" }, "any latest run"),
      ["Pending", "Running", "Succeeded", "Failed", "Cancelled"].map((s) => el("option", { value: s, selected: values.run === s }, s))),
    since: () => el("input", { name: "since", type: "date", value: values.since || "" }),
    until: () => el("input", { name: "until", type: "date", value: values.until || "" }),
    model: () => el("select", { name: "model" }, el("option", { value: "" }, "any model"),
      MODELS.map((m) => el("option", { value: m, selected: values.model === m }, m))),
    tag: () => el("input", { name: "tag", value: values.tag || "", size: 10 }),
    media: () => el("select", { name: "media", id: "filter-media" }, el("option", { value: "" }, "images and videos"),
      ["images", "videos"].map((m) => el("option", { value: m, selected: values.media === m }, m))),
    owner: () => el("input", { name: "owner", value: values.owner || "", size: 10, placeholder: "everyone" }),
  };
  const shown = session && session.admin ? [...fields, "owner"] : fields;
  const form = el("form", { class: "filters", id: "filters" },
    shown.map((name) => el("label", {}, name, inputs[name]())),
    el("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    for (const [key, value] of new FormData(form)) if (value) query.set(key, value);
    location.hash = `#/${section}${query.toString() ? "?" + query : ""}`; // a new filter starts at page 1
  });
  return form;
}

function pager(section, page) {
  if (page.total <= page.limit && page.offset === 0) return null;
  const values = filterValues();
  const link = (offset, label, rel) => {
    const query = new URLSearchParams({ ...values, offset: String(offset) });
    if (!offset) query.delete("offset");
    return el("a", { class: "button", href: `#/${section}${query.toString() ? "?" + query : ""}`, rel }, label);
  };
  const last = Math.min(page.offset + page.items.length, page.total);
  return el("nav", { class: "pager", "aria-label": "pages" },
    page.offset > 0 ? link(Math.max(0, page.offset - page.limit), "← Newer", "prev") : null,
    el("span", { class: "range" }, `${page.items.length ? page.offset + 1 : 0}–${last} of ${page.total}`),
    last < page.total ? link(page.offset + page.limit, "Older →", "next") : null);
}

function ownerPrefix(record) {
  return session && session.admin ? `${record.owner} · ` : "";
}

// --- acting on a record: re-run, new seed, copy as manifest, cancel, delete --------------------

function creates() {
  return config.create !== "off";
}

function createOffTitle() {
  return creates() ? undefined : "This API does not create: apply a manifest with kubectl (Copy as manifest)";
}

async function rerun(record, version, newSeed, status) {
  try {
    const made = await send("POST", `/api/jobs/${ref(record.id)}/rerun`, { version: version || undefined, newSeed: newSeed || undefined });
    created.add(made.jobId);
    closeLightbox();
    location.hash = `#/job/${ref(made.jobId)}`;
  } catch (error) {
    if (status) notice(status, error.message, true);
    else throw error;
  }
}

function closeDialog() {
  for (const dialog of document.querySelectorAll(".dialog")) dialog.remove();
}

// The version's settings as a manifest `kubectl apply -f -` takes as it is (fresh: under a new name).
async function showManifest(record, version, status) {
  closeDialog();
  const pre = el("pre", { id: "manifest-yaml", tabindex: "0" }, "loading…");
  const keep = el("input", { type: "checkbox", id: "manifest-keep-name" });
  const copy = el("button", { type: "button", class: "primary", id: "manifest-copy" }, "Copy");
  const warning = el("p", { class: "notice", id: "manifest-warning", hidden: true });
  const load = async () => {
    try {
      pre.textContent = await apiText(`/api/assets/${ref(record.id)}/manifest`, { version: version || undefined, fresh: keep.checked ? undefined : "true" });
    } catch (error) {
      pre.textContent = error.message;
      return;
    }
    // A laptop's run may have read a local file: a cluster cannot (admission refuses the path).
    const local = [...pre.textContent.matchAll(/^\s*url: *['"]?([^'"\n]+)/gm)].map((m) => m[1]).filter((u) => !/^(https?|s3):\/\//.test(u));
    warning.hidden = !local.length;
    warning.textContent = local.length ? `source.url ${local[0]} is a file on the machine that ran it: a cluster takes only an http(s):// or s3:// URL, so put the file there and change the URL before applying.` : "";
    await copyText(pre.textContent, copy);
  };
  keep.addEventListener("change", load);
  copy.addEventListener("click", () => copyText(pre.textContent, copy));
  const dialog = el("div", { class: "dialog", id: "manifest-dialog", role: "dialog", "aria-modal": "true", "aria-label": "Manifest" },
    el("div", {},
      el("h2", {}, `${record.kind} ${record.namespace}/${record.name}${version ? ` v${version}` : ""} as a manifest`),
      el("p", { class: "meta" }, "Apply it with ", el("code", {}, "kubectl apply -f -"), " (paste, then Ctrl-D), or save it into your GitOps repository."),
      el("label", { class: "meta" }, keep, " keep the name (applied where the resource exists, it runs these settings as its next version)"),
      warning, pre,
      el("div", { class: "actions" }, copy, el("button", { type: "button", id: "manifest-close", onclick: closeDialog }, "Close"))));
  dialog.addEventListener("click", (event) => { if (event.target === dialog) closeDialog(); });
  document.body.append(dialog);
  await load();
  if (status) put(status, );
}

function recordActions(record, version, status) {
  const images = record.kind === "ImageGeneration";
  const seeded = images || record.kind === "VideoGeneration";
  const running = ["Pending", "Running"].includes(record.latestRun.phase);
  return el("div", { class: "actions", id: "record-actions" },
    el("button", { type: "button", id: "rerun", disabled: !creates(), title: createOffTitle(), onclick: () => rerun(record, version, false, status) }, "Re-run"),
    seeded ? el("button", { type: "button", id: "new-seed", disabled: !creates(), title: createOffTitle(), onclick: () => rerun(record, version, true, status) }, "Same settings, new seed") : null,
    el("button", { type: "button", id: "copy-manifest", onclick: () => showManifest(record, version, status) }, "Copy as manifest"),
    images && creates() ? el("a", { class: "button", href: `#/create/image?${new URLSearchParams({ from: record.id, version: version || "" })}` }, "Edit and run") : null,
    running && creates() ? el("button", { type: "button", class: "danger", id: "cancel", onclick: () => act(record, "cancel", status) }, "Cancel run") : null,
    creates() && !record.deleted ? el("button", { type: "button", class: "danger", id: "delete", onclick: () => act(record, "delete", status) }, "Delete") : null);
}

async function act(record, action, status) {
  const question = action === "cancel" ? `Stop the run of ${record.namespace}/${record.name}?`
    : `Delete ${record.kind} ${record.namespace}/${record.name}? Its deletionPolicy decides whether its outputs stay.`;
  if (!window.confirm(question)) return;
  try {
    const done = action === "cancel"
      ? await send("POST", `/api/jobs/${ref(record.id)}/cancel`)
      : await send("DELETE", `/api/jobs/${ref(record.id)}`);
    notice(status, done.message);
  } catch (error) {
    notice(status, error.message, true);
  }
}

// --- the lightbox: one image large, everything about how it was made, keyboard navigation --------

let lightboxKeys = null;

function closeLightbox() {
  document.getElementById("lightbox")?.remove();
  if (lightboxKeys) document.removeEventListener("keydown", lightboxKeys);
  lightboxKeys = null;
}

// items: [{run, version, image, n}] (a generated image), or [{picture}] (a stored picture such as a
// likeness grid: {kind, src, alt, title, download, aside: () => nodes shown beside it}).
function openLightbox(items, start) {
  closeLightbox();
  let index = start;
  const picture = el("img", { id: "lb-image", alt: "" });
  const side = el("aside", { id: "lb-meta" });
  const stage = el("div", { class: "stage" }, picture);
  const box = el("div", { class: "lightbox", id: "lightbox", role: "dialog", "aria-modal": "true", "aria-label": "Image viewer", tabindex: "-1" }, stage, side);
  const go = (step) => {
    index = (index + step + items.length) % items.length;
    render();
  };
  const navRow = () => el("div", { class: "nav-row" },
    el("button", { type: "button", id: "lb-prev", "aria-label": "Previous image (←)", onclick: () => go(-1) }, "←"),
    el("span", { class: "counter", id: "lb-counter" }, `${index + 1} / ${items.length}`),
    el("button", { type: "button", id: "lb-next", "aria-label": "Next image (→)", onclick: () => go(1) }, "→"),
    el("button", { type: "button", id: "lb-close", "aria-label": "Close (Esc)", onclick: closeLightbox }, "✕"));
  const render = () => {
    if (items[index].picture) {
      const shown = items[index].picture;
      picture.src = shown.src;
      picture.alt = shown.alt || shown.title;
      box.dataset.picture = shown.kind || "picture";
      stage.tabIndex = shown.kind === "grid" ? 0 : -1; // a grid scrolls in it: by keyboard too
      put(side, navRow(), el("h2", { id: "lb-title" }, shown.title),
        shown.aside ? shown.aside() : null,
        el("div", { class: "actions" }, el("a", { class: "button download", id: "lb-download", href: shown.download, download: "" }, "Download")),
        el("p", { class: "meta" }, items.length > 1 ? "← → to move, Esc to close" : "Esc to close"));
      return;
    }
    delete box.dataset.picture;
    const { run, version, image, n } = items[index];
    if (!version.spec && !version.specAsked) { // lists leave the spec snapshot out: read the record once
      const shownAt = index;
      version.specAsked = true;
      api(`/api/jobs/${ref(run.id)}`).then((full) => {
        const same = full.versions.find((v) => v.version === version.version);
        version.spec = (same && same.spec) || {};
        if (index === shownAt && document.getElementById("lightbox") === box) render();
      }).catch(() => { version.spec = {}; render(); });
    }
    const spec = version.spec || {};
    box.dataset.spec = version.spec ? "loaded" : "loading";
    const prompt = version.prompt || run.prompt || spec.prompt || "";
    const seed = image.seed ?? spec.seed;
    const status = el("div", { id: "lb-status" });
    picture.src = contentUrl(run.id, image.uri, 1, false, version.version);
    picture.alt = prompt;
    box.dataset.id = run.id;
    box.dataset.version = version.version;
    box.dataset.n = n;
    const loras = (version.loras || []).map((lora) => {
      const trigger = el("span", { class: "trigger" });
      if (lora.uid) {
        api(`/api/jobs/${ref(lora.uid)}`).then((found) => {
          if (found.triggerWord) put(trigger, " · trigger ", el("code", {}, found.triggerWord), copyButton(found.triggerWord, "Copy", "lb-copy-trigger"));
        }).catch(() => {});
      }
      return el("div", { class: "lora-use" },
        lora.uid ? el("a", { href: `#/lora/${ref(lora.uid)}` }, lora.name || lora.uid) : (lora.name || lora.uri),
        ` v${lora.version} × ${lora.scale}`, trigger);
    });
    const row = (label, value, id) => [el("dt", {}, label), el("dd", { id }, value)];
    put(side, navRow(),
      el("h2", {}, el("a", { href: `#/image/${ref(run.id)}`, id: "lb-record" }, `${run.namespace}/${run.name}`), ` v${version.version}`, items.length > 1 ? ` · image ${n}` : ""),
      el("dl", { class: "facts" },
        row("prompt", [el("span", { id: "lb-prompt" }, prompt), copyButton(prompt, "Copy", "lb-copy-prompt")]),
        row("negative", spec.negativePrompt ? [spec.negativePrompt, copyButton(spec.negativePrompt, "Copy", "lb-copy-negative")] : "-", "lb-negative"),
        row("seed", seed !== null && seed !== undefined ? [String(seed), copyButton(String(seed), "Copy", "lb-copy-seed")] : "random (not recorded)", "lb-seed"),
        row("size", `${image.width}×${image.height}${spec.imageSize ? ` (${spec.imageSize})` : ""}`, "lb-size"),
        row("model", version.model || run.model || spec.model || "-", "lb-model"),
        row("LoRAs", loras.length ? loras : "none", "lb-loras"),
        row("provider", `${version.provider || run.provider || "-"}${version.placeholder ? " (offline placeholder, not a real image model)" : ""}`, "lb-provider"),
        row("cost", version.costUsd !== null && version.costUsd !== undefined ? `${usd(version.costUsd)} for this version` : "-", "lb-cost"),
        row("made", when(version.createdAt), "lb-date"),
        row("tags", (run.tags || []).length ? el("span", { class: "chips" }, run.tags.map((t) => el("a", { class: "badge", href: `#/gallery?tag=${encodeURIComponent(t)}` }, t))) : "-", "lb-tags"),
        session.admin ? row("owner", run.owner, "lb-owner") : []),
      el("div", { class: "actions" },
        el("button", { type: "button", id: "lb-rerun", disabled: !creates(), title: createOffTitle(), onclick: () => rerun(run, version.version, false, status) }, "Re-run"),
        el("button", { type: "button", id: "lb-new-seed", disabled: !creates(), title: createOffTitle(), onclick: () => rerun(run, version.version, true, status) }, "New seed"),
        el("button", { type: "button", id: "lb-manifest", onclick: () => showManifest(run, version.version, status) }, "Copy as manifest"),
        downloadButton(run.id, image.uri, 1, "Download", version.version)),
      status,
      el("p", { class: "meta" }, "← → to move, Esc to close"));
  };
  lightboxKeys = (event) => {
    if (document.getElementById("manifest-dialog")) {
      if (event.key === "Escape") closeDialog();
      return;
    }
    if (["INPUT", "TEXTAREA", "SELECT"].includes(event.target.tagName)) return;
    if (event.key === "ArrowRight") { event.preventDefault(); go(1); }
    else if (event.key === "ArrowLeft") { event.preventDefault(); go(-1); }
    else if (event.key === "Escape") closeLightbox();
  };
  document.addEventListener("keydown", lightboxKeys);
  box.addEventListener("click", (event) => { if (event.target === box || event.target === stage) closeLightbox(); });
  render();
  document.body.append(box);
  box.focus();
}

// --- views ----------------------------------------------------------------------------------

async function gallery() {
  const values = filterValues();
  const { media, ...query } = values;
  const empty = { items: [], total: 0, offset: 0, limit: PAGE.gallery };
  const [page, videos] = await Promise.all([
    media === "videos" ? empty : api("/api/assets/images", { ...query, limit: PAGE.gallery }),
    media === "images" ? empty : api("/api/jobs", { ...query, type: "video-generation", limit: PAGE.gallery }),
  ]);
  let cards = [];
  const items = [];
  for (const run of page.items) {
    if (!run.versions.length) { // nothing made yet: say why
      cards.push(el("article", { class: "card run-card", "data-id": run.id },
        el("a", { href: `#/job/${ref(run.id)}` }, el("div", { class: "title" }, run.prompt || run.name)),
        el("div", { class: "meta" }, `${ownerPrefix(run)}${run.namespace}/${run.name} · no images yet`),
        el("div", {}, badge(run.status), runBadge(run.latestRun)), waits(run.latestRun)));
      continue;
    }
    for (const version of run.versions.slice().reverse()) { // every usable version, newest first
      const lora = (version.loras || []).find((l) => l.name || l.uid);
      version.images.forEach((image, n) => {
        const at = items.length;
        items.push({ run, version, image, n: n + 1 });
        cards.push(el("article", { class: "card image-card", "data-id": run.id, "data-version": version.version, "data-n": n + 1 },
          el("a", { href: `#/image/${ref(run.id)}?version=${version.version}`, class: "open", onclick: (event) => { event.preventDefault(); openLightbox(items, at); } },
            el("img", { class: "thumb", src: thumbOf(run.id, image, version.version), alt: version.prompt || run.prompt, width: 240 })),
          el("div", { class: "title" }, version.prompt || run.prompt),
          el("div", { class: "meta" }, `${ownerPrefix(run)}${run.namespace}/${run.name} v${version.version} · ${version.model || run.model}`,
            image.seed !== null && image.seed !== undefined ? ` · seed ${image.seed}` : "",
            lora ? ` · LoRA ${lora.name || lora.uid} v${lora.version}` : ""),
          el("div", { class: "card-actions" }, badge(run.status), downloadButton(run.id, image.uri, 1, "Download", version.version), collectButton(run))));
      });
    }
  }
  // Videos beside images, newest first.
  const createdAt = new Map([...page.items, ...videos.items].map((r) => [r.id, r.createdAt || ""]));
  for (const run of videos.items) cards.push(...run.versions.slice().reverse().map((version) => videoCard(run, version))); // every version, newest first
  cards = cards.map((card, n) => [card, n]).sort(([a, i], [b, j]) => (createdAt.get(b.dataset.id) || "").localeCompare(createdAt.get(a.dataset.id) || "") || i - j).map(([card]) => card);
  put(main, 
    el("h1", {}, "Gallery"),
    filterForm("gallery", ["media", "status", "model", "tag", "since", "until"]),
    cards.length ? el("div", { class: "grid", id: "gallery" }, cards) : emptyState("images", "image", "imagegeneration.yaml", isFiltered(values)),
    pager("gallery", values.media === "videos" ? videos : page),
  );
}

function lineageList(use) {
  const trained = use.trained || {};
  const name = use.name || (use.lora && use.lora.name) || "(by URL)";
  return el("li", { class: "lora-use" },
    use.found ? el("a", { href: `#/lora/${ref(use.uid)}` }, `LoRA ${name}`) : `LoRA ${name}`,
    ` v${use.version} (scale ${use.scale})`,
    el("ol", {},
      el("li", {}, "id ", el("code", {}, use.uid || "-")),
      use.trained ? el("li", {}, `dataset: ${trained.datasetUri || "-"} (${trained.frames} images)`) : null,
      use.trained ? el("li", { class: "source" }, `source video: ${trained.sourceUrl || "-"}`) : null,
      use.found ? null : el("li", {}, `weights: ${use.uri}`)));
}

async function imageView(id) {
  const [run, lineage] = await Promise.all([api(`/api/jobs/${ref(id)}`), api(`/api/assets/${ref(id)}/lineage`)]);
  const items = [];
  const status = el("div", { id: "action-status" });
  const versions = run.versions.slice().reverse().map((version) => el("section", { class: "version", "data-version": version.version, id: `version-${version.version}` },
    el("h2", {}, `Version ${version.version}`),
    el("p", { class: "meta" }, `${version.prompt} · ${version.model} · ${when(version.createdAt)}`),
    el("div", { class: "images-large" }, version.images.map((image, n) => {
      const at = items.length;
      items.push({ run, version, image, n: n + 1 });
      return el("figure", {},
        el("img", { src: contentUrl(run.id, image.uri, 1, false, version.version), alt: version.prompt, onclick: () => openLightbox(items, at) }),
        el("figcaption", { class: "meta" }, `${image.width}×${image.height}, ${bytes(image.sizeBytes)}`,
          image.seed !== null && image.seed !== undefined ? `, seed ${image.seed} ` : " ",
          downloadButton(run.id, image.uri, 1, "Download", version.version)));
    }))));
  put(main, 
    el("h1", {}, `${run.namespace}/${run.name}`),
    el("dl", { class: "facts" },
      el("dt", {}, "prompt"), el("dd", {}, run.prompt, copyButton(run.prompt, "Copy", "copy-prompt")),
      el("dt", {}, "model"), el("dd", {}, run.model),
      el("dt", {}, "status"), el("dd", {}, badge(run.status), runFacts(run.latestRun)),
      session.admin ? [el("dt", {}, "owner"), el("dd", {}, run.owner)] : [],
      el("dt", {}, "tags"), el("dd", {}, (run.tags || []).join(", ") || "-"),
      el("dt", {}, "id"), el("dd", {}, el("code", {}, run.id))),
    recordActions(run, run.latestVersion, status), status,
    el("h2", {}, "Lineage"),
    el("div", { class: "lineage", id: "lineage" },
      lineage.loras.length ? el("ol", {}, lineage.loras.map(lineageList)) : el("p", { class: "empty" }, "Made without LoRAs.")),
    ...(versions.length ? versions : [el("p", { class: "empty" }, "No images yet. ", el("a", { href: `#/job/${ref(run.id)}` }, "Follow its run"))]),
    usagePanel(run),
  );
  showAsked(filterValues().version);
}

// --- videos ---------------------------------------------------------------------------------

function videoCard(run, version) {
  const video = version.video || {};
  const still = video.thumbnailUri || video.posterUri;
  return el("article", { class: "card video-card", "data-id": run.id, "data-version": version.version },
    el("a", { href: `#/video/${ref(run.id)}?version=${version.version}`, class: "open poster", "aria-label": `${run.namespace}/${run.name} version ${version.version}` },
      still ? el("img", { class: "thumb", src: contentUrl(run.id, still, still === video.thumbnailUri ? 2 : 1, false, version.version), alt: version.prompt || run.prompt, width: 240 }) : el("div", { class: "thumb" }),
      el("span", { class: "play", "aria-hidden": "true" }, "▶"),
      el("span", { class: "duration", "data-seconds": video.durationSeconds || 0 }, clock(video.durationSeconds || 0))),
    el("div", { class: "title" }, version.prompt || run.prompt),
    el("div", { class: "meta" }, `${ownerPrefix(run)}${run.namespace}/${run.name} v${version.version} · ${version.model || run.model} · video`),
    el("div", { class: "card-actions" }, badge(run.status), collectButton(run)));
}

// The likeness of the face along the video: a line of its samples against the threshold.
function videoLikeness(l) {
  if (!l || !l.verdict) return null;
  const samples = (l.samples || []).filter((s) => typeof s.timeSeconds === "number" && typeof s.score === "number");
  const end = Math.max(...samples.map((s) => s.timeSeconds), 1);
  const x = (t) => 10 + (t / end) * 300;
  const y = (score) => 90 - Math.max(0, Math.min(1, score)) * 80;
  const line = samples.length ? svg("polyline", { points: samples.map((s) => `${x(s.timeSeconds)},${y(s.score)}`).join(" "), fill: "none", stroke: "currentColor", "stroke-width": 2 }) : null;
  const threshold = typeof l.threshold === "number" ? svg("line", { x1: 10, x2: 310, y1: y(l.threshold), y2: y(l.threshold), stroke: "gray", "stroke-dasharray": "4 3" }) : null;
  return el("div", { class: "video-likeness", "data-verdict": l.verdict },
    el("h3", {}, "Likeness over time ", verdictBadge(l)),
    el("p", { class: "meta" }, [["median", l.median], ["lowest", l.lowest], ["drift", l.drift], ["threshold", l.threshold]]
      .filter(([, value]) => typeof value === "number").map(([label, value]) => `${label} ${num(value)}`).join(" · ") || "nothing measured",
      l.lora ? ` · against LoRA ${l.lora.name || l.lora.uid || l.lora}` : ""),
    samples.length ? svg("svg", { viewBox: "0 0 320 100", width: 320, height: 100, role: "img", "aria-label": `likeness of ${samples.length} samples over ${clock(end)}` },
      svg("title", {}, `${samples.length} samples`), threshold, line) : null,
    (l.reasons || []).length ? el("ul", { class: "reasons" }, l.reasons.map((r) => el("li", {}, r))) : null);
}

function videoVersion(run, version) {
  const video = version.video || {};
  const poster = video.posterUri ? contentUrl(run.id, video.posterUri, 1, false, version.version) : undefined;
  const picture = version.image;
  return el("section", { class: "version", "data-version": version.version, id: `version-${version.version}` },
    el("h2", {}, `Version ${version.version}`),
    el("p", { class: "meta" }, `${version.prompt} · ${version.model} · ${when(version.createdAt)}`),
    video.uri ? el("video", { controls: true, preload: "metadata", poster, id: `video-v${version.version}`, src: contentUrl(run.id, video.uri, 1, false, version.version), width: video.width || undefined, height: video.height || undefined, playsinline: true }) : null,
    video.stripUri ? el("img", { class: "strip", alt: "frames across the video", src: contentUrl(run.id, video.stripUri, 1, false, version.version) }) : null,
    el("p", { class: "meta video-facts" }, `${clock(video.durationSeconds || 0)} (${num(video.durationSeconds)} s) · ${video.width}×${video.height} · ${video.frames} frames at ${video.fps} fps · ${video.codec || "-"} · ${bytes(video.sizeBytes || 0)}`,
      video.seed !== null && video.seed !== undefined ? ` · seed ${video.seed} ` : " ",
      video.uri ? downloadButton(run.id, video.uri, 1, "Download", version.version) : null),
    picture || (version.loras || []).length ? el("ul", { class: "lineage" },
      picture ? el("li", {}, "animates ", picture.uid ? el("a", { href: `#/image/${ref(picture.uid)}` }, `${picture.name || picture.uid} v${picture.version} image ${picture.image}`) : picture.uri) : null,
      (version.loras || []).map((l) => el("li", {}, l.uid ? el("a", { href: `#/lora/${ref(l.uid)}` }, `LoRA ${l.name || l.uid} v${l.version}`) : `LoRA ${l.name || l.url || "(by URL)"}`))) : null,
    videoLikeness(video.likeness));
}

async function videoView(id) {
  const run = await api(`/api/jobs/${ref(id)}`);
  const status = el("div", { id: "action-status" });
  const versions = (run.versions || []).slice().reverse().map((version) => videoVersion(run, version));
  put(main,
    el("h1", {}, `${run.namespace}/${run.name}`),
    el("dl", { class: "facts" },
      el("dt", {}, "prompt"), el("dd", {}, run.prompt, copyButton(run.prompt, "Copy", "copy-prompt")),
      el("dt", {}, "model"), el("dd", {}, run.model),
      el("dt", {}, "status"), el("dd", {}, badge(run.status), runFacts(run.latestRun)),
      session.admin ? [el("dt", {}, "owner"), el("dd", {}, run.owner)] : [],
      el("dt", {}, "tags"), el("dd", {}, (run.tags || []).join(", ") || "-"),
      el("dt", {}, "id"), el("dd", {}, el("code", {}, run.id))),
    recordActions(run, run.latestVersion, status), status,
    ...(versions.length ? versions : [el("p", { class: "empty" }, "No video yet. ", el("a", { href: `#/job/${ref(run.id)}` }, "Follow its run"))]),
    usagePanel(run),
  );
  showAsked(filterValues().version);
}

// ?version=N (a gallery card of an older version): that version's section, marked and in view.
function showAsked(version) {
  const section = version && document.getElementById(`version-${version}`);
  if (!section) return;
  section.classList.add("asked");
  section.scrollIntoView({ block: "start" });
}

async function loras() {
  const values = filterValues();
  const page = await api("/api/assets/loras", { ...values, limit: PAGE.list });
  const cards = page.items.map((lora) => {
    const latest = lora.versions[lora.versions.length - 1];
    return el("article", { class: "card lora-card", "data-id": lora.id },
      latest && latest.contactSheetThumbnailUri
        ? el("a", { href: `#/lora/${ref(lora.id)}` }, el("img", { class: "thumb", src: contentUrl(lora.id, latest.contactSheetThumbnailUri, 2, false, latest.version), alt: "contact sheet" }))
        : null,
      el("a", { href: `#/lora/${ref(lora.id)}` }, el("div", { class: "title" }, `${lora.namespace}/${lora.name}`)),
      el("div", { class: "meta" }, `${ownerPrefix(lora)}trigger word ${lora.triggerWord} · ${lora.versions.length} version(s)`),
      latest ? verdictReasons(latest.likeness, `likeness of v${latest.version}`) : null,
      el("div", {}, badge(lora.status), runBadge(lora.latestRun)), waits(lora.latestRun));
  });
  put(main, 
    el("h1", {}, "LoRAs"),
    filterForm("loras", ["status", "tag", "since", "until"]),
    cards.length ? el("div", { class: "grid", id: "loras" }, cards) : emptyState("LoRAs", "lora", "loratraining.yaml", isFiltered(values)),
    pager("loras", page),
  );
}

function imageRunCard(run) {
  return el("article", { class: "card made-with", "data-id": run.id },
    el("a", { href: `#/image/${ref(run.id)}` },
      run.thumbnails.slice(0, 1).map((uri) => el("img", { class: "thumb", src: contentUrl(run.id, uri, uri.includes("/thumbs/") ? 2 : 1, false, versionOf(uri)), alt: run.prompt, width: 240 })),
      el("div", { class: "title" }, run.prompt)),
    el("div", { class: "meta" }, `${run.namespace}/${run.name}`), badge(run.status));
}

// A version's likeness report (docs/likeness.md): the numbers a person chooses a version by, one
// row each, and the grid of every evaluation picture with and without the LoRA.
const LIKENESS_ROWS = [
  ["verdict", (l) => l.verdict],
  ["median similarity", (l) => num(l.median) + (l.percent == null ? "" : ` (${Math.round(l.percent)} %)`)],
  ["without the LoRA", (l) => num(l.baselineMedian)],
  ["gain", (l) => num(l.gain)],
  ["faces over the threshold", (l) => share(l.aboveThreshold)],
  ["pictures without a face", (l) => share(l.noFaceRate)],
  ["bleed onto the other person", (l) => num(l.bleed)],
  ["closest to one training image", (l) => num(l.copySimilarity) + (l.copies ? ` (${l.copies} copies)` : "")],
  ["faces alike to each other", (l) => num(l.sameness)],
  ["the dataset's own (upper bound)", (l) => num(l.upperBound)],
];

function num(value) {
  return value === null || value === undefined ? "-" : Number(value).toFixed(2);
}

function share(value) {
  return value === null || value === undefined ? "-" : `${Math.round(Number(value) * 100)} %`;
}

const VERDICTS = ["good", "poor", "no-faces", "unmeasured", "skipped"];
// A scale's ends where a report has no baseline or no upper bound (docs/likeness.md#the-score).
const STRANGERS = 0.08;
const ONE_PERSON = 0.553;

// The ends of a report's scale, named: 0 % the model without the LoRA, 100 % the subject's own
// photographs (leave-one-out), or the calibration's strangers and one person where it has neither.
function scaleEnds(l) {
  return [
    l.baselineMedian === null || l.baselineMedian === undefined
      ? { value: STRANGERS, label: "two strangers" } : { value: Number(l.baselineMedian), label: "without the LoRA" },
    l.upperBound === null || l.upperBound === undefined
      ? { value: ONE_PERSON, label: "two pictures of one person" } : { value: Number(l.upperBound), label: "the subject's own photographs" },
  ];
}

function percentOf(l) {
  if (l.median === null || l.median === undefined) return null;
  if (l.percent !== null && l.percent !== undefined) return Number(l.percent);
  const [low, high] = scaleEnds(l);
  return high.value > low.value ? ((l.median - low.value) / (high.value - low.value)) * 100 : null;
}

// One line: the verdict, the median and where it is on the scale.
function verdictLine(l) {
  const percent = percentOf(l);
  const [low, high] = scaleEnds(l);
  return `likeness ${l.verdict}${l.median === null || l.median === undefined ? "" : `, median ${num(l.median)}`}` +
    (percent === null ? "" : ` (${Math.round(percent)} % of the way from ${low.label}, ${num(low.value)}, to ${high.label}, ${num(high.value)})`);
}

// A likeness verdict as a badge (good, poor, no-faces, unmeasured, skipped) with its median; the
// summary and every reason on hover.
function verdictBadge(l, id) {
  if (!l) return el("span", { class: "badge verdict verdict-none", "data-verdict": "none", title: "No likeness evaluation", id }, "not evaluated");
  const kind = VERDICTS.includes(l.verdict) ? l.verdict : "other";
  return el("span", { class: `badge verdict verdict-${kind}`, "data-verdict": l.verdict, "data-median": l.median ?? "", title: [verdictLine(l), ...(l.reasons || [])].join("\n"), id },
    l.verdict, l.median === null || l.median === undefined ? "" : ` ${num(l.median)}`);
}

// On a card: the badge, which opens its reasons one line each (a hover shows them too).
function verdictReasons(l, label) {
  const tail = label ? el("span", { class: "meta" }, ` ${label}`) : null;
  const reasons = (l && l.reasons) || [];
  if (!reasons.length) return el("div", { class: "verdict-line" }, verdictBadge(l), tail);
  return el("details", { class: "verdict-line" }, el("summary", { title: [verdictLine(l), ...reasons].join("\n") }, verdictBadge(l), tail),
    el("ul", { class: "likeness-reasons" }, reasons.map((r) => el("li", {}, r))));
}

// The median on the report's own scale, both ends named. Not capped: over 100 % the faces are more
// alike to the subject than the subject's own photographs are to each other (copies); the mark
// stops at the end and the words say so.
function likenessScale(l, id) {
  const percent = percentOf(l);
  if (percent === null) return null;
  const [low, high] = scaleEnds(l);
  const at = Math.max(0, Math.min(100, percent));
  const fill = el("div", { class: "fill" });
  fill.style.width = `${at}%`; // CSSOM, which the page's CSP allows
  const mark = el("div", { class: "mark" });
  mark.style.left = `${at}%`;
  const kind = VERDICTS.includes(l.verdict) ? l.verdict : "other";
  const beyond = percent > 100 ? ": more alike to the subject than the subject's own photographs are to each other (copies?)"
    : percent < 0 ? ": less alike to the subject than without the LoRA" : "";
  return el("div", { class: `likeness-scale verdict-${kind}`, id, "data-percent": percent.toFixed(1) },
    el("div", { class: "scale-bar", role: "meter", "aria-valuenow": percent.toFixed(1), "aria-valuemin": 0, "aria-valuemax": 100, "aria-label": verdictLine(l) }, fill, mark),
    el("div", { class: "scale-ends" },
      el("span", { class: "low" }, `0 % ${low.label} (${num(low.value)})`),
      el("span", { class: "high" }, `100 % ${high.label} (${num(high.value)})`)),
    el("p", { class: "meta scale-says" }, `median ${num(l.median)} is ${Math.round(percent)} % of the way${beyond}`));
}

// A stored picture of a LoRA version (a likeness grid) for the lightbox.
function gridItem(loraId, version, uri, title, aside) {
  return { picture: { kind: "grid", src: contentUrl(loraId, uri, 2, false, version), download: contentUrl(loraId, uri, 2, true, version), title, alt: title, aside } };
}

// The version's likeness grid (a row per picture, with and without the LoRA) as a thumbnail of its
// top rows that opens it whole in the lightbox; `caption`: say so under it.
function likenessGrid(lora, v, caption) {
  const grid = v.likeness && v.likeness.gridUri;
  if (!grid) return null;
  const open = (event) => {
    event.preventDefault();
    openLightbox([gridItem(lora.id, v.version, grid, `Likeness grid of version ${v.version}`, () => [verdictReasons(v.likeness)])], 0);
  };
  const link = el("a", { href: contentUrl(lora.id, grid, 2, false, v.version), class: "open-likeness-grid", onclick: open },
    el("img", { class: "likeness-grid", src: contentUrl(lora.id, grid, 2, false, v.version), alt: `likeness grid of version ${v.version}` }));
  if (!caption) return link;
  const pictures = v.likeness.images ? `${v.likeness.images} pictures` : "Every picture";
  return el("figure", { class: "likeness-thumb", id: `likeness-grid-v${v.version}` }, link,
    el("figcaption", { class: "meta" }, `${pictures} with the LoRA and without it, each with its similarity. Click to open the grid whole.`));
}

// Which evaluation a version's report is: its training run's (e0), a re-evaluation, or a score
// of pictures made elsewhere.
function reportSource(v) {
  const number = v.likenessEvaluation || 0;
  if (!number) return "its training run's evaluation (e0)";
  return `evaluation e${number}${v.likenessSource === "pictures" ? ", a score of pictures made elsewhere" : ", evaluated again"}`;
}

function likenessSection(lora, v) {
  const likeness = v.likeness;
  const n = v.version;
  return el("div", { class: "likeness", "data-verdict": likeness ? likeness.verdict : "none" },
    likeness ? [
      el("p", { class: "verdict-head" }, verdictBadge(likeness, `verdict-v${n}`), el("span", { class: "meta" }, reportSource(v))),
      likenessScale(likeness, `scale-v${n}`),
      el("dl", { class: "facts" }, LIKENESS_ROWS.flatMap(([label, value]) => [el("dt", {}, label), el("dd", {}, value(likeness))])),
      (likeness.reasons || []).length ? el("ul", { class: "likeness-reasons" }, likeness.reasons.map((r) => el("li", {}, r))) : null,
      likenessCurve(lora, v),
      checkpointList(lora, v),
      checkpointsGrid(lora, v),
      likenessGrid(lora, v, true),
    ] : el("p", { class: "empty" }, "No likeness evaluation for this version."),
    el("h3", {}, "Evaluations"),
    evaluationHistory(lora, v),
    evaluateAgain(lora, v),
    scorePictures(lora, v));
}

// The step whose LoRA is the version's model: a person's choice (promotion), else the automatic one.
function modelStep(v, curve) {
  if (v.promotion) return v.promotion.step;
  const chosen = (curve.checkpoints || []).find((p) => p.chosen);
  return curve.chosenStep ?? v.chosenStep ?? (chosen ? chosen.step : undefined);
}

// Who chose the version's model: "step 500, chosen by alice at ... (automatic choice: step 750)".
function modelLine(v) {
  const p = v.promotion;
  if (p) {
    return `step ${p.step}, chosen by ${p.by || "someone"} at ${when(p.at)}` +
      (p.automaticStep === null || p.automaticStep === undefined ? "" : ` (automatic choice: step ${p.automaticStep})`) + (p.note ? ` — “${p.note}”` : "");
  }
  return v.chosenStep === null || v.chosenStep === undefined ? null : `step ${v.chosenStep}, the automatic choice`;
}

// Each scored checkpoint with its verdict and grid, and "Use this checkpoint": make its LoRA the
// version's model (POST .../promote; the automatic choice is kept).
function checkpointList(lora, v) {
  const curve = curveOf(v);
  if (!curve) return null;
  const n = v.version;
  const model = modelStep(v, curve);
  const status = el("div", { class: "promote-status", id: `promote-status-v${n}` });
  const items = curve.checkpoints.filter((p) => p.gridUri).map((p) =>
    gridItem(lora.id, n, p.gridUri, `Version ${n}, checkpoint step ${p.step}`, () => [verdictReasons(p), likenessCurve(lora, v)]));
  const rows = curve.checkpoints.map((p) => {
    const at = curve.checkpoints.filter((c) => c.gridUri).indexOf(p);
    const automatic = Boolean(v.promotion) && p.chosen && p.step !== model;
    return el("tr", { "data-step": p.step, class: p.step === model ? "model" : undefined },
      el("td", { "data-label": "checkpoint" }, `step ${p.step}`, p.step === model ? el("b", {}, " · the model") : null, automatic ? " · the automatic choice" : ""),
      el("td", { "data-label": "likeness" }, verdictBadge(p)),
      el("td", { "data-label": "grid" }, p.gridUri
        ? el("a", { href: contentUrl(lora.id, p.gridUri, 2, false, n), class: "open-grid", onclick: (event) => { event.preventDefault(); openLightbox(items, at); } }, "grid")
        : "-"),
      el("td", {}, p.step === model ? el("span", { class: "meta" }, "in use") : el("button", {
        type: "button", class: "promote", "data-step": p.step, disabled: !creates(), title: createOffTitle(),
        onclick: () => promoteStep(lora, v, p.step, status) }, "Use this checkpoint")));
  });
  return el("div", { class: "checkpoint-list" },
    el("table", { class: "stack checkpoints", id: `checkpoints-v${n}` },
      el("tr", { class: "head" }, ["checkpoint", "likeness", "grid", ""].map((h) => el("th", {}, h))), rows),
    creates() ? null : el("p", { class: "meta why-off" }, "Choosing a checkpoint is off: this API does not create (CONTENTGEN_API_CREATE=off)."),
    status);
}

async function promoteStep(lora, v, step, status) {
  if (!window.confirm(`Make checkpoint step ${step} the model of version ${v.version}? A loraRef to the version uses its LoRA from then on; the automatic choice is kept.`)) return;
  let answer;
  try {
    answer = await send("POST", `/api/assets/${ref(lora.id)}/versions/${v.version}/promote`, { step });
  } catch (error) {
    notice(status, error.message, true).dataset.code = error.code || "";
    return;
  }
  // In a cluster (202) the LoraTraining is annotated and the operator follows: say so, the record
  // shows it once the operator has.
  if (answer && answer.annotation) {
    notice(status, answer.message, false);
    return;
  }
  await showVersion(lora.id, v.version);
}

// The LoRA page again, on version `n`'s tab (after something changed it).
async function showVersion(id, n) {
  const wanted = `#/lora/${ref(id)}?tab=v${n}`;
  if (location.hash === wanted) await route();
  else location.hash = wanted;
}

// The seed × checkpoint grid (likeness-checkpoints.jpg): opens large in the lightbox, beside the curve.
function checkpointsGrid(lora, v) {
  const curve = curveOf(v);
  const uri = (curve && curve.checkpointsGridUri) || (v.likeness && v.likeness.checkpointsGridUri);
  if (!uri) return null;
  const n = v.version;
  const src = contentUrl(lora.id, uri, 2, false, n);
  const item = { picture: { kind: "checkpoints", src, download: contentUrl(lora.id, uri, 2, true, n), title: `Version ${n}: the checkpoints side by side`,
    aside: () => [el("p", { class: "meta" }, "A row per checkpoint (its step, verdict and median; * the automatic choice) under a row without the LoRA; a column per prompt and seed, each picture's similarity under it."),
      likenessCurve(lora, v), v.promotion ? el("p", { class: "meta" }, `The model: ${modelLine(v)}.`) : null] } };
  return el("figure", { class: "checkpoints-grid", id: `checkpoints-grid-v${n}` },
    el("a", { href: src, onclick: (event) => { event.preventDefault(); openLightbox([item], 0); } },
      el("img", { class: "checkpoints-grid", src, alt: `the checkpoints of version ${n} side by side` })),
    el("figcaption", { class: "meta" }, "Seed × checkpoint: each checkpoint's pictures of the same prompts and seeds, a row each. Click to open it large beside the curve."));
}

// Every evaluation of the version, newest first (by its number); the one whose report the version
// shows (the API's choice) is marked `current`.
function evaluationsOf(v) {
  if (!v.likeness) return [];
  const own = (entry) => (entry.evaluation ? entry : { ...entry, at: entry.at || v.createdAt, provider: entry.provider || v.provider });
  const current = own({ ...(v.likenessEntry || {}), evaluation: v.likenessEvaluation || 0, likeness: v.likeness, source: v.likenessSource || (v.likenessEntry || {}).source || "", current: true });
  const others = (v.likenessHistory || []).map(own).filter((e) => e.evaluation !== current.evaluation);
  return [current, ...others].sort((a, b) => b.evaluation - a.evaluation);
}

function evaluatedBy(entry) {
  if (!entry.evaluation) return "its training run";
  const made = entry.resource;
  if (made && made.uid) return el("a", { href: `#/evaluation/${ref(made.uid)}` }, `LoraEvaluation ${made.namespace}/${made.name}`);
  return entry.by || "-";
}

function evaluationHistory(lora, v) {
  const n = v.version;
  const entries = evaluationsOf(v);
  if (!entries.length) return el("p", { class: "empty", id: `evaluations-v${n}` }, "Not evaluated yet.");
  const gridded = entries.filter((e) => e.likeness && e.likeness.gridUri);
  const items = gridded.map((e) => gridItem(lora.id, n, e.likeness.gridUri, `Version ${n}, evaluation e${e.evaluation}`, () => [verdictReasons(e.likeness)]));
  const rows = entries.map((e) => el("tr", { "data-evaluation": e.evaluation, class: e.current ? "current" : undefined },
    el("td", { "data-label": "evaluation" }, `e${e.evaluation}`, e.current ? el("span", { class: "meta" }, " (shown above)") : null),
    el("td", { "data-label": "at" }, when(e.at)),
    el("td", { "data-label": "by" }, evaluatedBy(e)),
    el("td", { "data-label": "pictures" }, e.source === "pictures" ? `source: pictures (${(e.pictures || []).length || "?"} made elsewhere)` : (e.provider || "-")),
    el("td", { "data-label": "verdict" }, verdictBadge(e.likeness)),
    el("td", { "data-label": "median" }, num(e.likeness && e.likeness.median)),
    el("td", { "data-label": "cost" }, e.evaluation ? usd(e.costUsd) : "in its run's"),
    el("td", { "data-label": "grid" }, e.likeness && e.likeness.gridUri
      ? el("button", { type: "button", class: "open-grid", onclick: () => openLightbox(items, gridded.indexOf(e)) }, "grid") : "-")));
  return [
    el("table", { class: "stack evaluations", id: `evaluations-v${n}` },
      el("tr", { class: "head" }, ["evaluation", "at", "by", "pictures", "verdict", "median", "cost", "grid"].map((h) => el("th", {}, h))), rows),
    v.olderEvaluations ? el("p", { class: "meta" }, `${v.olderEvaluations} older evaluation(s) are in the store only.`) : null,
  ];
}

// "Evaluate again": first the estimate (a dry run), shown; then, confirmed, the evaluation.
function evaluateAgain(lora, v) {
  const n = v.version;
  const path = `/api/assets/${ref(lora.id)}/versions/${n}/evaluate`;
  const status = el("div", { class: "evaluate-status", id: `evaluate-status-v${n}` });
  const seeds = el("input", { id: `evaluate-seeds-v${n}`, name: "seeds", placeholder: "1, 2", size: 8, inputmode: "numeric" });
  const body = () => {
    const list = seeds.value.split(/[\s,]+/).filter(Boolean).map(Number);
    return list.length ? { seeds: list } : {};
  };
  const pay = async (button) => {
    button.disabled = true;
    put(status, el("p", { class: "notice", id: `evaluate-running-v${n}` }, "Evaluating… the answer comes when it is recorded."));
    try {
      const done = await send("POST", `${path}?confirm=true`, body());
      if (done.resource) { // in a cluster: a LoraEvaluation the operator runs
        created.add(done.resource.jobId);
        put(status, el("p", { class: "notice", id: `evaluate-created-v${n}` }, `Created LoraEvaluation ${done.resource.namespace}/${done.resource.name}; the operator runs it. `,
          el("a", { href: `#/evaluation/${ref(done.resource.jobId)}` }, "Follow it")));
        return;
      }
    } catch (error) {
      notice(status, error.message, true).dataset.code = error.code || "";
      return;
    }
    await showVersion(lora.id, n);
  };
  const ask = async () => {
    put(status, el("p", { class: "meta" }, "estimating…"));
    let plan;
    try {
      plan = await send("POST", path, body());
    } catch (error) {
      notice(status, error.message, true).dataset.code = error.code || "";
      return;
    }
    const confirm = el("button", { type: "button", class: "primary", id: `evaluate-confirm-v${n}` }, plan.estimateUsd ? `Evaluate for ${usd(plan.estimateUsd)}` : "Evaluate (free)");
    confirm.addEventListener("click", () => pay(confirm));
    put(status, el("div", { class: "notice estimate", id: `evaluate-estimate-v${n}`, "data-usd": plan.estimateUsd },
      el("p", {}, `${plan.provider}, ${plan.promptSet}, seeds ${plan.seeds.join(", ")}: estimated ${usd(plan.estimateUsd)}`,
        plan.baselineCached ? " (the pictures without the LoRA are stored already: not paid again)" : ""),
      el("p", { class: "meta" }, plan.estimate),
      el("div", { class: "actions" }, confirm, el("button", { type: "button", onclick: () => put(status) }, "Cancel"))));
  };
  return el("div", { class: "evaluate-again" },
    el("div", { class: "actions" },
      el("button", { type: "button", id: `evaluate-v${n}`, disabled: !creates(), title: createOffTitle(), onclick: ask }, "Evaluate again"),
      el("label", { class: "meta" }, "seeds ", seeds)),
    creates() ? null : el("p", { class: "meta why-off", id: `evaluate-off-v${n}` }, "Evaluate again is off: this API does not create or run paid work (CONTENTGEN_API_CREATE=off). Use ",
      el("code", {}, `contentgen assets evaluate ${lora.name} --version ${n}`), " or apply a LoraEvaluation."),
    status);
}

// "Score your own pictures": pictures made elsewhere scored against the version's subject (POST
// .../score, multipart; free). Only a laptop's API stores a score; elsewhere it says why not.
function scorePictures(lora, v) {
  const n = v.version;
  const status = el("div", { class: "score-status", id: `score-status-v${n}` });
  const kinds = "image/png,image/jpeg,image/webp";
  const pictures = el("input", { type: "file", name: "pictures", id: `score-pictures-v${n}`, multiple: true, accept: kinds });
  const baseline = el("input", { type: "file", name: "baseline", id: `score-baseline-v${n}`, multiple: true, accept: kinds });
  const form = el("form", { class: "create score-form", id: `score-form-v${n}` },
    el("label", { class: "wide" }, "Pictures made with this version elsewhere (ComfyUI, another service): PNG, JPEG or WebP, up to 32", pictures),
    el("label", { class: "wide" }, "Optional: the same prompts made without the LoRA (to measure its gain)", baseline),
    el("div", { class: "buttons" }, el("button", { type: "submit", id: `score-submit-v${n}` }, "Score these pictures"),
      el("span", { class: "meta" }, config.create === "local" ? "free: nothing is generated; recorded as an evaluation of this version"
        : "free; only a laptop's API (contentgen api --local) stores a score: elsewhere, contentgen assets evaluate --pictures")),
    status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!pictures.files.length) {
      notice(status, "Choose the pictures to score first.", true);
      return;
    }
    const data = new FormData();
    for (const file of pictures.files) data.append("pictures", file, file.name);
    for (const file of baseline.files) data.append("baseline", file, file.name);
    put(status, el("p", { class: "meta" }, "scoring…"));
    const response = await fetch(`/api/assets/${ref(lora.id)}/versions/${n}/score`, { method: "POST", credentials: "same-origin", body: data });
    if (!response.ok) {
      const failed = await failure(response);
      notice(status, failed.message, true).dataset.code = failed.code;
      return;
    }
    await showVersion(lora.id, n);
  });
  return el("details", { class: "score-own", id: `score-v${n}` }, el("summary", {}, "Score your own pictures"), form);
}

const SVG_NS = "http://www.w3.org/2000/svg";

// `el` for SVG: the same attributes and children, in SVG's namespace.
function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== undefined && value !== null && value !== false) node.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child !== undefined && child !== null && child !== false) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// The report with the version's checkpoints' curve: the newest evaluation's, or its run's own
// where a re-evaluation (of the model alone) came after it.
function curveOf(v) {
  const reports = [v.likeness, ...(v.likenessHistory || []).map((h) => h.likeness)];
  return reports.find((r) => r && (r.checkpoints || []).length) || null;
}

// The likeness of each checkpoint the version's training stored (docs/likeness.md#checkpoints):
// the median similarity per step as a line over the threshold (dashed), the version's model ringed,
// each point a link to its checkpoint's grid. A checkpoint whose pictures showed no face has no
// median: its point sits on the axis, hollow.
function likenessCurve(lora, v) {
  const curve = curveOf(v);
  if (!curve) return null;
  const points = curve.checkpoints;
  const [width, height, left, right, top, bottom] = [480, 200, 44, 16, 12, 34];
  const first = points[0].step, last = points[points.length - 1].step;
  const x = (step) => left + (last > first ? (step - first) / (last - first) : 0.5) * (width - left - right);
  const y = (value) => top + (1 - Math.max(0, Math.min(1, value))) * (height - top - bottom);
  const threshold = curve.threshold ?? v.likeness?.threshold;
  const model = modelStep(v, curve);
  const measured = points.filter((p) => p.median !== null && p.median !== undefined);
  const label = `likeness per checkpoint of version ${v.version}: ` + points.map((p) => `step ${p.step} ${p.verdict}${p.median == null ? "" : ` ${num(p.median)}`}`).join(", ");
  return el("figure", { class: "likeness-curve" },
    svg("svg", { class: "likeness-curve", "data-version": v.version, viewBox: `0 0 ${width} ${height}`, role: points.some((p) => p.gridUri) ? "group" : "img", "aria-label": label },
      svg("line", { class: "axis", x1: left, y1: y(0), x2: width - right, y2: y(0) }),
      svg("line", { class: "axis", x1: left, y1: y(0), x2: left, y2: y(1) }),
      [0, 0.5, 1].map((value) => svg("text", { class: "tick", x: left - 6, y: y(value) + 4, "text-anchor": "end" }, value.toFixed(1))),
      threshold == null ? null : [
        svg("line", { class: "threshold", x1: left, y1: y(threshold), x2: width - right, y2: y(threshold), "data-value": threshold }),
        svg("text", { class: "tick", x: width - right, y: y(threshold) - 4, "text-anchor": "end" }, `threshold ${num(threshold)}`),
      ],
      measured.length > 1 ? svg("polyline", { class: "median", points: measured.map((p) => `${x(p.step)},${y(p.median)}`).join(" ") }) : null,
      points.map((p) => {
        const measuredPoint = p.median !== null && p.median !== undefined;
        const isModel = p.step === model;
        const automatic = Boolean(v.promotion) && p.chosen && !isModel; // a person chose another
        const title = `step ${p.step}: ${p.verdict}${measuredPoint ? `, median ${num(p.median)}` : ""}${isModel ? " (the version's model)" : ""}${automatic ? " (the automatic choice)" : ""}`;
        const mark = svg("circle", {
          class: `point${isModel ? " chosen" : ""}${automatic ? " automatic" : ""}${measuredPoint ? "" : " no-median"}`,
          cx: x(p.step), cy: y(measuredPoint ? p.median : 0), r: isModel ? 7 : 4.5,
          "data-step": p.step, "data-verdict": p.verdict,
        }, svg("title", {}, title));
        const text = svg("text", { class: "tick", x: x(p.step), y: height - bottom + 16, "text-anchor": "middle" }, p.step);
        return p.gridUri ? svg("a", { href: contentUrl(lora.id, p.gridUri, 2, false, v.version), "data-step": p.step }, mark, text) : [mark, text];
      })),
    el("figcaption", { class: "meta" }, curve.choice || "", v.promotion ? ` Then a person chose: ${modelLine(v)}.` : ""));
}

// The training loss per step (the cluster's trainer records it, trainingLoss): a line over the
// steps, the loss axis from its lowest value to its highest, the scored checkpoints' steps dashed.
function lossCurve(v) {
  const points = (v.trainingLoss || []).filter((p) => p && Number.isFinite(Number(p.step)) && Number.isFinite(Number(p.loss)))
    .map((p) => ({ step: Number(p.step), loss: Number(p.loss) })).sort((a, b) => a.step - b.step);
  if (!points.length) return null;
  const [width, height, left, right, top, bottom] = [480, 180, 52, 16, 12, 34];
  let low = points[0], high = points[0];
  for (const p of points) {
    if (p.loss < low.loss) low = p;
    if (p.loss > high.loss) high = p;
  }
  const span = high.loss - low.loss || Math.abs(high.loss) || 1;
  const bottomLoss = high.loss - low.loss ? low.loss : low.loss - span / 2;
  const first = points[0].step, last = points[points.length - 1].step;
  const x = (step) => left + (last > first ? (step - first) / (last - first) : 0.5) * (width - left - right);
  const y = (loss) => top + (1 - (loss - bottomLoss) / span) * (height - top - bottom);
  const fixed = (value) => Number(value).toFixed(Math.abs(value) >= 10 ? 1 : 3);
  const curve = curveOf(v);
  const steps = curve ? curve.checkpoints.map((p) => p.step).filter((s) => s >= first && s <= last) : [];
  const model = curve ? modelStep(v, curve) : undefined;
  const label = `training loss of version ${v.version}: ${points.length} points, ${fixed(points[0].loss)} at step ${first} to ${fixed(points[points.length - 1].loss)} at step ${last}`;
  return el("figure", { class: "loss-curve", id: `loss-v${v.version}` },
    svg("svg", { class: "loss-curve", "data-version": v.version, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label },
      svg("line", { class: "axis", x1: left, y1: height - bottom, x2: width - right, y2: height - bottom }),
      svg("line", { class: "axis", x1: left, y1: height - bottom, x2: left, y2: top }),
      [bottomLoss, bottomLoss + span / 2, bottomLoss + span].map((value) => svg("text", { class: "tick", x: left - 6, y: y(value) + 4, "text-anchor": "end" }, fixed(value))),
      steps.map((s) => svg("line", { class: `checkpoint${s === model ? " model" : ""}`, x1: x(s), y1: top, x2: x(s), y2: height - bottom, "data-step": s },
        svg("title", {}, `checkpoint step ${s}${s === model ? " (the version's model)" : ""}`))),
      points.length > 1
        ? svg("polyline", { class: "loss", points: points.map((p) => `${x(p.step).toFixed(1)},${y(p.loss).toFixed(1)}`).join(" ") })
        : svg("circle", { class: "loss", cx: x(first), cy: y(points[0].loss), r: 3 }),
      [first, last].filter((s, i) => i === 0 || s !== first).map((s) => svg("text", { class: "tick", x: x(s), y: height - bottom + 16, "text-anchor": "middle" }, s)),
      svg("text", { class: "tick", x: (left + width - right) / 2, y: height - 4, "text-anchor": "middle" }, "step")),
    el("figcaption", { class: "meta" }, `Training loss per step: ${fixed(points[0].loss)} at step ${first}, ${fixed(points[points.length - 1].loss)} at step ${last}, lowest ${fixed(low.loss)} at step ${low.step}`,
      steps.length ? "; the scored checkpoints dashed. The loss does not show overfitting: the likeness curve does." : "."));
}

// The versions' likeness side by side: a column per version picked (`picked`), newest first, in a
// box that scrolls sideways when they do not fit (its first column stays).
function likenessTable(lora, versions, picked) {
  const shown = versions.slice().reverse();
  if (!shown.some((v) => v.likeness)) return el("p", { class: "empty", id: "likeness-table" }, "No version has a likeness evaluation.");
  const cell = (tag, v, ...children) => el(tag, { "data-version": v.version, hidden: !picked.has(v.version) }, ...children);
  return el("div", { class: "table-scroll", id: "likeness-scroll" }, el("table", { id: "likeness-table", class: "likeness-table" },
    el("tr", { class: "head" }, el("th", {}, ""), shown.map((v) => cell("th", v, `Version ${v.version}`))),
    LIKENESS_ROWS.map(([label, value]) => el("tr", {}, el("th", {}, label),
      shown.map((v) => cell("td", v, v.likeness ? value(v.likeness) : "-")))),
    el("tr", {}, el("th", {}, "grid"), shown.map((v) => cell("td", v, likenessGrid(lora, v) || "-")))));
}

// Which versions Compare shows and draws: a chip per version, the newest four to start with.
function versionPicker(versions, picked, onChange) {
  const newest = versions.slice().reverse();
  const boxes = newest.map((v) => el("input", { type: "checkbox", name: "version", value: v.version, checked: picked.has(v.version) }));
  const changed = () => {
    picked.clear();
    for (const box of boxes) if (box.checked) picked.add(Number(box.value));
    onChange();
  };
  const choose = (numbers) => {
    for (const box of boxes) box.checked = numbers.includes(Number(box.value));
    changed();
  };
  for (const box of boxes) box.addEventListener("change", changed);
  return el("fieldset", { class: "version-pick", id: "compare-pick" },
    el("legend", { class: "meta" }, `Versions to compare (${versions.length})`),
    el("div", { class: "chips" }, newest.map((v, i) => el("label", { class: "chip" }, boxes[i], ` v${v.version} `, verdictBadge(v.likeness)))),
    versions.length > 4 ? el("div", { class: "actions" },
      el("button", { type: "button", id: "pick-newest", onclick: () => choose(newest.slice(0, 4).map((v) => v.version)) }, "Newest 4"),
      el("button", { type: "button", id: "pick-all", onclick: () => choose(newest.map((v) => v.version)) }, "All")) : null);
}

function loraVersionPanel(lora, v) {
  const model = modelLine(v);
  const loss = lossCurve(v);
  return el("section", { class: "version", "data-version": v.version, role: "tabpanel", id: `panel-v${v.version}` },
    el("h2", {}, `Version ${v.version} `, verdictBadge(v.likeness)),
    el("dl", { class: "facts" },
      el("dt", {}, "created"), el("dd", {}, when(v.createdAt)),
      el("dt", {}, "trained"), el("dd", {}, `${v.steps} steps of ${v.trainingModel || "-"} on ${v.frames} images (${v.provider})`),
      model ? [el("dt", {}, "model"), el("dd", { id: `model-v${v.version}` }, model)] : [],
      el("dt", {}, "cost"), el("dd", {}, usd(v.costUsd)),
      el("dt", {}, "dataset"), el("dd", {}, v.datasetUri || "-"),
      el("dt", {}, "source video"), el("dd", { class: "source" }, v.sourceUrl || "-"),
      el("dt", {}, "weights"), el("dd", {}, `${bytes(v.sizeBytes)} `, downloadButton(lora.id, v.modelUri, 2, "Download model", v.version),
        " ", v.datasetUri ? downloadButton(lora.id, v.datasetUri, 2, "Download dataset", v.version) : null)),
    v.contactSheetUri
      ? el("a", { href: contentUrl(lora.id, v.contactSheetUri, 2, false, v.version) },
        el("img", { class: "contact-sheet", src: contentUrl(lora.id, v.contactSheetThumbnailUri || v.contactSheetUri, 2, false, v.version), alt: `contact sheet of version ${v.version}` }))
      : el("p", { class: "empty" }, "No contact sheet for this version."),
    loss ? [el("h2", {}, "Training loss"), loss] : null,
    el("h2", {}, "Likeness"),
    likenessSection(lora, v),
    el("h2", {}, `Images made with version ${v.version}`),
    v.images.length ? el("div", { class: "grid made-with-grid" }, v.images.map(imageRunCard))
      : el("p", { class: "empty" }, "None yet. ", creates() ? el("a", { href: `#/create/image?${new URLSearchParams({ lora: lora.name, loraVersion: v.version, prompt: `a photo of ${lora.triggerWord}` })}` }, `Generate with version ${v.version}`) : ""));
}

// The comparisons of a LoRA's versions made so far (each an ImageGeneration per version, tagged
// compare-<id> and compare-of-<name>), newest first: one row of cells per comparison.
async function renderComparisons(lora, box) {
  const page = await api("/api/assets/images", { tag: `compare-of-${lora.name}`.slice(0, 64), limit: 200 });
  const groups = new Map();
  for (const run of page.items) {
    if (run.namespace !== lora.namespace) continue;
    const tag = (run.tags || []).find((t) => t.startsWith("compare-") && !t.startsWith("compare-of-"));
    if (!tag) continue;
    if (!groups.has(tag)) groups.set(tag, []);
    groups.get(tag).push(run);
  }
  if (!groups.size) {
    put(box, el("p", { class: "empty", id: "no-comparisons" }, "No comparisons yet: give a prompt above and each version draws it with the same seed."));
    return;
  }
  const ordered = [...groups.entries()].sort((a, b) => String(b[1][0].createdAt).localeCompare(String(a[1][0].createdAt)));
  // Redrawn only when something shown changed (a stream event may repeat what is drawn).
  const signature = JSON.stringify(ordered.map(([tag, runs]) => [tag, runs.map((r) => [r.id, r.latestRun.phase, r.latestRun.reason, r.latestVersion])]));
  if (box.dataset.signature === signature) return;
  box.dataset.signature = signature;
  put(box, ...ordered.map(([tag, runs]) => {
    const numberOf = (run) => {
      const used = (run.loras || [])[0];
      if (used && used.version) return used.version;
      const named = run.name.match(/-v(\d+)$/);
      return named ? Number(named[1]) : 0;
    };
    runs.sort((a, b) => numberOf(a) - numberOf(b));
    const items = [];
    const first = runs.find((r) => r.versions.length) || runs[0];
    const sample = ((first.versions[first.versions.length - 1] || {}).images || [])[0] || {}; // lists carry no spec
    const cells = runs.map((run) => {
      const version = run.versions[run.versions.length - 1];
      const image = version && version.images[0];
      let picture = null;
      if (image) {
        const at = items.length;
        items.push({ run, version, image, n: 1 });
        picture = el("img", { src: thumbOf(run.id, image, version.version), alt: `version ${numberOf(run)}`, onclick: () => openLightbox(items, at) });
      }
      return el("div", { class: "compare-cell", "data-version": numberOf(run), "data-id": run.id },
        el("div", { class: "label" }, `v${numberOf(run)}`),
        picture || el("div", {}, runBadge(run.latestRun), waits(run.latestRun)));
    });
    return el("section", { class: "comparison", "data-tag": tag },
      el("h3", {}, `“${first.prompt}”`),
      el("p", { class: "meta" }, `seed ${sample.seed ?? "-"} · ${sample.width ? `${sample.width}×${sample.height}` : "not drawn yet"} · ${when(first.createdAt)} · tag ${tag}`),
      el("div", { class: "compare-grid" }, cells));
  }));
}

function compareForm(lora, box, picked) {
  const status = el("div", { id: "compare-status" });
  const prompt = el("input", { name: "prompt", id: "compare-prompt", required: true, value: `a photo of ${lora.triggerWord}`, maxlength: 4000 });
  const seed = el("input", { name: "seed", id: "compare-seed", type: "number", min: 0, max: 4294967295, placeholder: "random" });
  const size = el("select", { name: "imageSize", id: "compare-size" }, SIZES.map((s) => el("option", { value: s, selected: s === "square" }, s)));
  const form = el("form", { class: "create", id: "compare-form" },
    el("label", { class: "wide" }, "Prompt (put the trigger word in it)", prompt),
    el("label", {}, "Seed (the same for every version)", seed),
    el("label", {}, "Size", size),
    el("p", { class: "meta wide" }, "With each version picked above, newest first."),
    el("div", { class: "buttons" }, el("button", { type: "submit", disabled: !creates(), title: createOffTitle() }, "Compare versions"), status));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const versions = [...picked].sort((a, b) => a - b);
    try {
      const done = await send("POST", `/api/jobs/${ref(lora.id)}/compare`, {
        prompt: prompt.value, versions, imageSize: size.value, seed: seed.value === "" ? undefined : Number(seed.value),
      });
      done.created.forEach((c) => created.add(c.jobId));
      notice(status, `Started ${done.created.length} image generation(s), tagged ${done.tag}.`);
      await renderComparisons(lora, box);
    } catch (error) {
      notice(status, error.message, true);
    }
  });
  return form;
}

async function loraView(id) {
  const [lora, lineage] = await Promise.all([api(`/api/jobs/${ref(id)}`), api(`/api/assets/${ref(id)}/lineage`)]);
  const values = filterValues();
  const status = el("div", { id: "action-status" });
  // Lineage's versions carry the images made with each; the record's, what readers get of each
  // (the newest evaluation's report, the history, a person's choice of model).
  const byNumber = new Map(lora.versions.map((v) => [v.version, v]));
  const versions = lineage.versions.map((v) => ({ ...v, ...(byNumber.get(v.version) || {}), images: v.images }));
  const newestFirst = versions.slice().reverse();
  const panels = newestFirst.map((v) => loraVersionPanel(lora, v));
  const comparisons = el("div", { id: "comparisons" });
  const picked = new Set(newestFirst.slice(0, 4).map((v) => v.version));
  const table = likenessTable(lora, versions, picked);
  const showPicked = () => {
    for (const cell of table.querySelectorAll("[data-version]")) cell.hidden = !picked.has(Number(cell.dataset.version));
  };
  const comparePanel = el("section", { role: "tabpanel", id: "panel-compare" },
    el("h2", {}, "Compare versions"),
    versions.length ? versionPicker(versions, picked, showPicked) : null,
    el("h3", {}, "Likeness"),
    table,
    el("p", { class: "meta" }, "The same prompt and seed with each version, made as one ImageGeneration per version (loraRef pinned to it)."),
    lora.versions.length ? compareForm(lora, comparisons, picked) : el("p", { class: "empty" }, "No usable version yet."),
    comparisons);
  const selected = values.tab || (panels.length ? `v${versions[versions.length - 1].version}` : "compare");
  // Many versions: the newest four as tabs (and the one shown), the others in a list.
  const TABS = 5;
  const tabbed = newestFirst.length <= TABS ? newestFirst
    : newestFirst.filter((v, i) => i < TABS - 1 || `v${v.version}` === selected);
  const older = newestFirst.length <= TABS ? [] : newestFirst.slice(TABS - 1);
  const tabButton = (key, ...label) => el("button", { type: "button", role: "tab", "data-tab": key, "aria-selected": String(key === selected), "aria-controls": `panel-${key}`,
    onclick: () => { location.hash = `#/lora/${ref(lora.id)}?tab=${key}`; } }, ...label);
  const tabList = el("div", { class: "tabs", role: "tablist", id: "version-tabs" },
    tabbed.map((v) => tabButton(`v${v.version}`, `Version ${v.version} `, verdictBadge(v.likeness))),
    older.length ? el("select", { id: "older-versions", "aria-label": "Older versions", onchange: (event) => { if (event.target.value) location.hash = `#/lora/${ref(lora.id)}?tab=${event.target.value}`; } },
      el("option", { value: "" }, `Older versions (${older.length})`),
      older.map((v) => el("option", { value: `v${v.version}`, selected: `v${v.version}` === selected }, `Version ${v.version} · ${v.likeness ? `${v.likeness.verdict}${v.likeness.median == null ? "" : ` ${num(v.likeness.median)}`}` : "not evaluated"}`))) : null,
    tabButton("compare", "Compare versions"));
  for (const panel of [...panels, comparePanel]) panel.hidden = panel.id !== `panel-${selected}`;
  put(main, 
    el("h1", {}, `LoRA ${lora.namespace}/${lora.name}`),
    el("dl", { class: "facts" },
      el("dt", {}, "trigger word"), el("dd", {}, el("code", { id: "trigger" }, lora.triggerWord), copyButton(lora.triggerWord, "Copy", "copy-trigger")),
      el("dt", {}, "status"), el("dd", {}, badge(lora.status), runFacts(lora.latestRun)),
      session.admin ? [el("dt", {}, "owner"), el("dd", {}, lora.owner)] : [],
      el("dt", {}, "versions"), el("dd", {}, String(lora.versions.length)),
      el("dt", {}, "images made with it"), el("dd", {}, String(lineage.imagesTotal)),
      el("dt", {}, "use it"), el("dd", {}, "an ImageGeneration's ", el("code", {}, `loras: [{loraRef: {name: ${lora.name}}}]`),
        creates() && lora.versions.length ? [" — ", el("a", { href: `#/create/image?${new URLSearchParams({ lora: lora.name, prompt: `a photo of ${lora.triggerWord}` })}` }, "Generate with it")] : ""),
      el("dt", {}, "id"), el("dd", {}, el("code", {}, lora.id))),
    recordActions(lora, lora.latestVersion, status), status,
    tabList, ...panels, comparePanel, usagePanel(lora),
  );
  if (selected === "compare") {
    // Follow the comparisons' runs: one stream for the image generations, redrawn on their
    // changes; started before the first drawing, so no change falls in between.
    let queued = null;
    await followJobs("/api/stream/jobs?type=image-generation", (state) => {
      if (!(state.tags || []).includes(`compare-of-${lora.name}`.slice(0, 64)) || queued) return;
      queued = setTimeout(() => { queued = null; renderComparisons(lora, comparisons).catch(() => {}); }, 200);
      timers.add(queued);
    });
    await renderComparisons(lora, comparisons);
  }
}

async function transcripts() {
  const values = filterValues();
  const page = await api("/api/assets/transcripts", { ...values, limit: PAGE.list });
  const admin = session.admin;
  const rows = page.items.map((t) => el("tr", { "data-id": t.id },
    el("td", { "data-label": "name" }, el("a", { href: `#/transcript/${ref(t.id)}` }, `${t.namespace}/${t.name}`)),
    admin ? el("td", { "data-label": "owner", class: "owner" }, t.owner) : null,
    el("td", { "data-label": "status" }, badge(t.status), runBadge(t.latestRun), waits(t.latestRun)),
    el("td", { "data-label": "length" }, `${t.wordCount} words, ${clock(t.durationSeconds)}, ${t.speakers} speaker(s)`),
    el("td", { "data-label": "created" }, when(t.createdAt))));
  const head = ["name", admin ? "owner" : null, "status", "length", "created"].filter(Boolean);
  put(main, 
    el("h1", {}, "Transcripts"),
    filterForm("transcripts", ["status", "tag", "since", "until"]),
    rows.length ? el("table", { id: "transcripts", class: "stack" }, el("tr", { class: "head" }, head.map((h) => el("th", {}, h))), rows)
      : emptyState("transcripts", "transcript", "transcription.yaml", isFiltered(values)),
    pager("transcripts", page),
  );
}

// The transcript as speaker turns with their times; the player beside it follows the text (the
// turn being spoken is marked and scrolled to), and a click on a time plays from there.
async function transcriptView(id) {
  const t = await api(`/api/jobs/${ref(id)}`);
  const values = filterValues();
  const latest = values.version ? t.versions.find((v) => String(v.version) === values.version) : t.versions[t.versions.length - 1];
  const status = el("div", { id: "action-status" });
  const text = el("pre", { class: "transcript-text", id: "transcript-text" }, latest ? "loading…" : "No transcript yet.");
  const files = (version) => [
    downloadButton(t.id, version.transcript.textUri, 1, "transcript.txt", version.version), " ",
    downloadButton(t.id, version.transcript.jsonUri, 1, "transcript.json", version.version)];
  const exportLink = (format, label) => el("a", { class: "button download", id: `export-${format}`, download: "",
    href: withQuery(`/api/assets/${ref(t.id)}/transcript`, { format, version: latest.version, download: "true" }) }, label);
  const others = t.versions.filter((v) => v !== latest).reverse().map((v) => el("li", { "data-version": v.version },
    el("a", { href: `#/transcript/${ref(t.id)}?version=${v.version}` }, `v${v.version}`), ` (${when(v.createdAt)}): ${v.transcript.wordCount} words `, ...files(v)));
  const segments = el("div", { class: "segments", id: "segments" }, el("p", { class: "empty" }, latest ? "loading…" : "No transcript yet."));
  const player = el("audio", { id: "player", controls: true, preload: "metadata" });
  const follow = el("input", { type: "checkbox", id: "follow", checked: true });
  const playerRow = el("div", { class: "player", id: "player-row" }, player, el("label", { class: "meta" }, follow, " follow the text"));
  put(main, 
    el("h1", {}, `Transcript ${t.namespace}/${t.name}`),
    el("dl", { class: "facts" },
      el("dt", {}, "status"), el("dd", {}, badge(t.status), runBadge(t.latestRun), waits(t.latestRun)),
      session.admin ? [el("dt", {}, "owner"), el("dd", {}, t.owner)] : [],
      el("dt", {}, "version"), el("dd", {}, latest ? `v${latest.version} of ${t.versions.length}` : "-"),
      el("dt", {}, "length"), el("dd", {}, latest ? `${latest.transcript.wordCount} words, ${clock(latest.transcript.durationSeconds)}, ${latest.transcript.speakers} speaker(s)` : "-"),
      el("dt", {}, "source"), el("dd", {}, (latest && latest.sourceUrl) || t.sourceUrl || "-"),
      el("dt", {}, "export"), el("dd", { id: "exports" }, latest ? [exportLink("srt", "SRT subtitles"), " ", exportLink("vtt", "WebVTT"), " ", exportLink("txt", "Timed text"), " ", ...files(latest)] : "-")),
    recordActions(t, latest && latest.version, status), status,
    latest ? playerRow : null,
    el("h2", {}, "Transcript"), segments,
    latest ? el("details", { id: "plain" }, el("summary", {}, "Plain text"), text) : null,
    others.length ? el("h2", {}, "Other versions") : null,
    others.length ? el("ul", { id: "earlier-versions" }, others) : null);
  if (!latest) return;
  player.addEventListener("error", () => {
    put(playerRow, el("p", { class: "meta", id: "no-player" }, "The source cannot be played here (a local file on another machine, or a bucket this API does not serve). The times still say where each turn is."));
  });
  player.src = withQuery(`/api/assets/${ref(t.id)}/source`, { version: latest.version });
  // t=SECONDS (a search hit's link): play from there once the player can
  const seek = values.t !== undefined && values.t !== "" ? Number(values.t) : NaN;
  if (Number.isFinite(seek)) player.addEventListener("loadedmetadata", () => { player.currentTime = seek; }, { once: true });
  const [timed, plain] = await Promise.all([
    api(`/api/assets/${ref(t.id)}/transcript`, { version: latest.version }).catch((error) => error),
    apiText(`/api/assets/${ref(t.id)}/content`, { file: fileOf(latest.transcript.textUri, 1), version: latest.version }).catch((error) => error),
  ]);
  text.textContent = plain instanceof Error ? `Could not load the text (${plain.message}).` : plain;
  if (timed instanceof Error) {
    put(segments, el("p", { class: "error" }, `Could not load the timed transcript: ${timed.message}`));
    return;
  }
  const rows = timed.segments.map((s, n) => el("div", { class: "segment", "data-start": s.start, "data-end": s.end, "data-n": n },
    el("button", { type: "button", class: "time", title: "Play from here", onclick: () => { player.currentTime = s.start; player.play().catch(() => {}); } }, clock(s.start)),
    el("p", {}, s.speaker ? el("span", { class: `speaker speaker-${s.speaker}` }, `Speaker ${s.speaker}`) : null, s.text)));
  put(segments, 
    timed.placeholder ? el("p", { class: "notice" }, "The offline provider wrote this: it is a placeholder, not a transcript of the audio.") : null,
    timed.timed ? null : el("p", { class: "meta" }, "The provider gave no word times: the text spans the audio."),
    ...(rows.length ? rows : [el("p", { class: "empty" }, "No words were heard.")]));
  if (Number.isFinite(seek)) { // the turn the hit is in, marked and in view even where nothing plays
    let at = -1;
    timed.segments.forEach((seg, n) => { if (seg.start <= seek + 0.05) at = n; });
    if (at >= 0) { rows[at].classList.add("hit"); rows[at].id = "hit"; rows[at].scrollIntoView({ block: "center" }); }
  }
  let active = -1;
  const sync = () => {
    const now = player.currentTime;
    let found = -1;
    timed.segments.forEach((s, n) => { if (s.start <= now + 0.05) found = n; });
    if (found === active) return;
    if (active >= 0) rows[active].classList.remove("active");
    active = found;
    if (active >= 0) {
      rows[active].classList.add("active");
      segments.dataset.active = String(active);
      if (follow.checked) rows[active].scrollIntoView({ block: "nearest" });
    }
  };
  player.addEventListener("timeupdate", sync);
  player.addEventListener("seeked", sync);
}

function follow(id, onStatus, onEnd) {
  const source = new EventSource(`/api/stream/job/${ref(id)}`);
  streams.add(source);
  source.addEventListener("status", (event) => onStatus(JSON.parse(event.data)));
  source.addEventListener("end", () => { source.close(); streams.delete(source); if (onEnd) onEnd(); });
  source.addEventListener("error", () => { if (source.readyState === EventSource.CLOSED) streams.delete(source); });
}

// What a Jobs row shows of a record: its status, versions and latest run (why it waits), live.
function jobRow(job) {
  const run = job.latestRun;
  const bar = progressBar(run.progress, false, `progress of ${job.namespace}/${job.name}`);
  const row = el("tr", { "data-id": job.id });
  const cells = {
    status: el("td", { class: "status", "data-label": "status" }),
    run: el("td", { class: "run", "data-label": "latest run" }),
    stage: el("td", { class: "stage", "data-label": "stage" }),
    versions: el("td", { class: "versions", "data-label": "versions" }),
  };
  row.append(
    el("td", { "data-label": "name" }, el("a", { href: `#/job/${ref(job.id)}` }, `${job.namespace}/${job.name}`)),
    session.admin ? el("td", { class: "owner", "data-label": "owner" }, job.owner) : "",
    el("td", { "data-label": "type" }, job.type), cells.status, cells.run, el("td", { "data-label": "progress" }, bar), cells.stage, cells.versions,
    el("td", { "data-label": "created" }, when(job.createdAt)));
  row.update = (state) => {
    put(cells.status, badge(state.status));
    put(cells.run, runBadge(state.latestRun));
    setProgress(bar, state.latestRun.progress);
    put(cells.stage, state.latestRun.stage || "", waits(state.latestRun) || "");
    const count = state.versionCount !== undefined ? state.versionCount : (state.versions || []).length;
    cells.versions.textContent = count ? `v${state.latestVersion} (${count})` : "-";
  };
  row.update(job);
  return row;
}

// Does a record the stream announces belong on this page (its filters)?
function matches(state, values) {
  if (values.type && state.type !== values.type) return false;
  if (values.run && state.latestRun.phase !== values.run) return false;
  if (values.status ? state.status !== values.status : state.status === "Deleted") return false;
  if (values.tag && !(state.tags || []).includes(values.tag)) return false;
  if (values.owner && state.owner !== values.owner) return false;
  return true;
}

// Follow a list's changes (/api/stream/jobs): `onJob` gets each changed record. Resolves once
// the server has the stream's starting point (its `ready`): read the list after that, and a change
// written before it is in the list, one after it comes as an event. (An EventSource that is open
// is not yet one the server has.) A stream that cannot start holds the view back 3 s at most.
function followJobs(url, onJob) {
  const source = new EventSource(url);
  streams.add(source);
  source.addEventListener("job", (event) => onJob(JSON.parse(event.data)));
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 3000);
    timers.add(timer);
    source.addEventListener("ready", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

async function jobs() {
  // One stream for the whole list, started before the list is read, so no change falls in between.
  const values = filterValues();
  const rows = new Map();
  const early = [];
  let table = null;
  const firstPage = !values.offset || values.offset === "0";
  const apply = (state) => {
    const row = rows.get(state.id);
    if (row) {
      row.update(state);
    } else if (firstPage && matches(state, values) && !values.until) { // a new record: created now
      const added = jobRow(state);
      rows.set(state.id, added);
      if (!table) return;
      table.querySelector("tr").after(added); // the newest first, under the header
      document.getElementById("empty")?.remove();
    }
  };
  await followJobs(withQuery("/api/stream/jobs", { type: values.type, owner: values.owner }), (state) => {
    if (table) apply(state); else early.push(state);
  });
  const page = await api("/api/jobs", { ...values, limit: PAGE.list });
  for (const job of page.items) rows.set(job.id, jobRow(job));
  const head = ["name", session.admin ? "owner" : null, "type", "status", "latest run", "progress", "stage", "versions", "created"].filter(Boolean);
  table = el("table", { id: "jobs", class: "stack" }, el("tr", { class: "head" }, head.map((h) => el("th", {}, h))), [...rows.values()]);
  put(main, 
    el("h1", {}, "Jobs"),
    filterForm("jobs", ["type", "status", "run", "tag", "since", "until"]),
    table,
    rows.size ? null : emptyState("jobs", "image", "imagegeneration.yaml", isFiltered(values)),
    pager("jobs", page),
  );
  for (const state of early.splice(0)) apply(state);
}

async function jobView(id) {
  let job;
  try {
    job = await api(`/api/jobs/${ref(id)}`);
  } catch (error) {
    if (!(error instanceof ApiFailure && error.status === 404 && created.has(id))) throw error;
    // Just created in a cluster: the operator records it in a moment.
    put(main, el("h1", {}, "Created"), el("p", { class: "notice", id: "waiting-record" }, `Created ${id}; waiting for the operator to record it…`));
    timers.add(setTimeout(() => { if (location.hash.includes(id)) route(); }, 1000));
    return;
  }
  const run = job.latestRun;
  const bar = progressBar(run.progress, true, "progress of the latest run");
  const percent = el("span", { id: "percent" }, `${run.progress} %`);
  const status = el("dd", { id: "job-status" }, badge(job.status));
  const phase = el("dd", { id: "job-run" }, runBadge(run), run.version ? ` version ${run.version}` : "");
  const stage = el("dd", { id: "job-stage" }, run.stage || "-");
  const message = el("dd", { id: "job-message" }, run.message || "-");
  const why = el("dd", { id: "job-waits" }, waits(run) || "-");
  const versions = el("dd", { id: "job-versions" }, job.versions.map((v) => `v${v.version}`).join(", ") || "-");
  const cost = el("dd", { id: "job-cost" }, costOf(job));
  const actionStatus = el("div", { id: "action-status" });
  // What changes when the run ends: the actions (no Cancel run), what it made, its storage.
  const ending = el("div", { id: "job-ending" });
  const drawEnding = (record) => put(ending, recordActions(record, record.latestVersion, actionStatus), actionStatus, jobOutputs(record), usagePanel(record));
  drawEnding(job);
  put(main, 
    el("h1", {}, `${job.kind} ${job.namespace}/${job.name}`),
    el("div", { id: "job-progress" }, bar, " ", percent),
    el("dl", { class: "facts" },
      el("dt", {}, "status"), status, el("dt", {}, "latest run"), phase, el("dt", {}, "stage"), stage,
      el("dt", {}, "message"), message, el("dt", {}, "why"), why, el("dt", {}, "versions"), versions,
      session.admin ? [el("dt", {}, "owner"), el("dd", {}, job.owner)] : [],
      el("dt", {}, "cost"), cost,
      el("dt", {}, "outputs"), el("dd", {}, el("a", { href: outputsOf(job), id: "outputs" }, "view"))),
    ending);
  if (run.phase === "Pending" || run.phase === "Running") {
    const ended = async () => { // read the record as the run left it (still on this page)
      if (!location.hash.includes(ref(job.id))) return;
      const done = await api(`/api/jobs/${ref(job.id)}`).catch(() => null);
      if (!done || !location.hash.includes(ref(job.id))) return;
      versions.textContent = done.versions.map((v) => `v${v.version}`).join(", ") || "-";
      cost.textContent = costOf(done);
      drawEnding(done);
      ending.dataset.ended = done.latestRun.phase;
    };
    follow(job.id, (state) => {
      const latest = state.latestRun;
      setProgress(bar, latest.progress);
      percent.textContent = `${latest.progress} %`;
      put(status, badge(state.status));
      put(phase, runBadge(latest), latest.version ? ` version ${latest.version}` : "");
      stage.textContent = latest.stage || "-";
      message.textContent = latest.message || "-";
      put(why, waits(latest) || "-");
      versions.textContent = state.versionCount ? `v${state.latestVersion} (${state.versionCount})` : "-";
    }, ended);
  }
}

function costOf(job) {
  return job.cost ? usd(job.cost.actualUsd ?? job.cost.estimatedUsd) : "-";
}

// The first picture of what a record's latest version made, as a thumbnail (an image's, a video's
// still, a LoRA's contact sheet); null where it has none (a transcript, nothing made yet).
function recordThumb(record) {
  const v = (record.versions || [])[record.versions.length - 1];
  if (!v) return null;
  const image = (v.images || [])[0];
  if (image && image.uri) return { src: thumbOf(record.id, image, v.version), version: v.version };
  const video = v.video || {};
  const still = video.thumbnailUri || video.posterUri;
  if (still) return { src: contentUrl(record.id, still, still === video.thumbnailUri ? 2 : 1, false, v.version), version: v.version };
  const sheet = v.contactSheetThumbnailUri || v.contactSheetUri;
  if (sheet) return { src: contentUrl(record.id, sheet, 2, false, v.version), version: v.version };
  return null;
}

// On a job's page, once it has made something: its latest version's pictures, a link to each.
function jobOutputs(job) {
  const v = (job.versions || [])[job.versions.length - 1];
  if (!v) return null;
  const open = `${outputsOf(job)}${job.kind === "Transcription" ? `?version=${v.version}` : ""}`;
  const pictures = job.kind === "ImageGeneration"
    ? (v.images || []).map((image, n) => el("a", { href: open, class: "output" }, el("img", { class: "thumb", src: thumbOf(job.id, image, v.version), alt: `image ${n + 1} of version ${v.version}`, width: 160 })))
    : [recordThumb(job)].filter(Boolean).map((t) => el("a", { href: open, class: "output" }, el("img", { class: "thumb", src: t.src, alt: `what version ${v.version} made`, width: 160 })));
  return el("section", { id: "job-outputs", class: "job-outputs" },
    el("h2", {}, `What version ${v.version} made`),
    pictures.length ? el("div", { class: "outputs" }, pictures) : null,
    el("p", {}, el("a", { href: open, id: "job-open" }, job.kind === "Transcription" ? "Read the transcript" : job.kind === "LoraTraining" ? "Open the LoRA" : "Open it")));
}

// A LoraEvaluation's page: the LoRA version it evaluated, its score (the verdict, the median on its
// scale with both ends named, the reasons, every number), its grid and its cost. Its files are its
// LoRA version's, so its grid comes through the LoRA's content route.
async function evaluationView(id) {
  const job = await api(`/api/jobs/${ref(id)}`);
  if (job.kind !== "LoraEvaluation") {
    await jobView(id);
    return;
  }
  const values = filterValues();
  const shown = (values.version && job.versions.find((v) => String(v.version) === values.version)) || job.versions[job.versions.length - 1];
  const lora = (shown && shown.lora) || job.lora || {};
  const likeness = shown ? shown.likeness : job.likeness;
  const status = el("div", { id: "action-status" });
  const running = ["Pending", "Running"].includes(job.latestRun.phase);
  const loraLink = lora.uid
    ? el("a", { href: `#/lora/${ref(lora.uid)}?tab=v${lora.version}`, id: "evaluation-lora" }, `${job.namespace}/${lora.name}`, ` version ${lora.version}`)
    : `${lora.name || "-"} version ${lora.version || "-"}`;
  const grid = likeness && likeness.gridUri && lora.uid ? gridItem(lora.uid, lora.version, likeness.gridUri, `${job.namespace}/${job.name}: evaluation e${shown.evaluation} of ${lora.name} v${lora.version}`, () => [verdictReasons(likeness)]) : null;
  const cost = job.cost ? (job.cost.actualUsd !== null && job.cost.actualUsd !== undefined ? usd(job.cost.actualUsd) : `${usd(job.cost.estimatedUsd)} estimated`) : "-";
  const others = job.versions.filter((v) => v !== shown).reverse();
  put(main,
    el("h1", {}, `LoraEvaluation ${job.namespace}/${job.name}`),
    el("p", { class: "meta" }, "A LoRA version's likeness evaluated again (docs/likeness.md)."),
    el("dl", { class: "facts", id: "evaluation-facts" },
      el("dt", {}, "LoRA"), el("dd", {}, loraLink, lora.triggerWord ? [" · trigger ", el("code", {}, lora.triggerWord)] : ""),
      el("dt", {}, "evaluation"), el("dd", { id: "evaluation-number" }, shown ? `e${shown.evaluation} of version ${lora.version}${job.versions.length > 1 ? ` (run ${shown.version} of ${job.versions.length})` : ""}` : "-"),
      el("dt", {}, "status"), el("dd", {}, badge(job.status), runBadge(job.latestRun), waits(job.latestRun)),
      el("dt", {}, "pictures"), el("dd", {}, likeness ? `${likeness.promptSet || "-"}, seeds ${(likeness.seeds || []).join(", ") || "-"}: ${likeness.images ?? "-"} pictures, ${likeness.faces ?? "-"} with a face, by ${(shown && shown.provider) || job.provider || "-"}` : "-"),
      el("dt", {}, "cost"), el("dd", { id: "evaluation-cost" }, cost, shown && shown.costUsd !== null && shown.costUsd !== undefined && job.versions.length > 1 ? ` (this evaluation ${usd(shown.costUsd)})` : ""),
      el("dt", {}, "made"), el("dd", {}, when(shown ? shown.createdAt : job.createdAt)),
      session.admin ? [el("dt", {}, "owner"), el("dd", {}, job.owner)] : [],
      el("dt", {}, "id"), el("dd", {}, el("code", {}, job.id), " · ", el("a", { href: `#/job/${ref(job.id)}` }, "its runs"))),
    recordActions(job, job.latestVersion, status), status,
    el("h2", {}, "Score"),
    likeness
      ? el("div", { class: "evaluation-score", id: "evaluation-score", "data-verdict": likeness.verdict },
        el("p", { class: "verdict-head" }, verdictBadge(likeness, "evaluation-verdict"), el("span", { class: "meta" }, verdictLine(likeness))),
        likenessScale(likeness, "evaluation-scale"),
        (likeness.reasons || []).length ? el("ul", { class: "likeness-reasons", id: "evaluation-reasons" }, likeness.reasons.map((r) => el("li", {}, r))) : null,
        el("dl", { class: "facts" }, LIKENESS_ROWS.flatMap(([label, value]) => [el("dt", {}, label), el("dd", {}, value(likeness))])))
      : el("p", { class: "empty", id: "evaluation-pending" }, running ? "Evaluating: its score shows here when the run ends." : "No score: its run made no report."),
    grid ? [el("h2", {}, "Grid"), el("figure", { class: "evaluation-grid" },
      el("a", { href: grid.picture.src, onclick: (event) => { event.preventDefault(); openLightbox([grid], 0); } },
        el("img", { class: "likeness-grid", id: "evaluation-grid", src: grid.picture.src, alt: grid.picture.title })),
      el("figcaption", { class: "meta" }, "Every picture with its similarity, with and without the LoRA. Click to open it large."))] : null,
    others.length ? [el("h2", {}, "Its other evaluations"), el("ul", { id: "evaluation-others" }, others.map((v) => el("li", { "data-version": v.version },
      el("a", { href: `#/evaluation/${ref(job.id)}?version=${v.version}` }, `e${v.evaluation}`), ` (${when(v.createdAt)}) `, verdictBadge(v.likeness))))] : null);
  if (running) follow(job.id, () => {}, () => { if (location.hash.includes(ref(job.id))) route(); });
}

// Where a record's outputs are: a LoraEvaluation's on its own page (its score and grid, which are
// its LoRA version's files).
function outputsOf(job) {
  return `#/${KIND_LINK[job.kind]}/${ref(job.id)}`;
}

// A snippet with the words searched for marked.
function snippet(hit) {
  const parts = [];
  let at = 0;
  for (const [start, end] of hit.highlights) {
    if (start < at) continue;
    parts.push(hit.snippet.slice(at, start), el("mark", {}, hit.snippet.slice(start, end)));
    at = end;
  }
  parts.push(hit.snippet.slice(at));
  return parts;
}

async function search() {
  const values = filterValues();
  const page = await api("/api/assets/search", { ...values, limit: PAGE.list });
  const hitsOf = Object.fromEntries((page.hits || []).map((h) => [h.id, h]));
  // Each transcript hit: its time, a link that plays from there, the words around it.
  const said = (item) => ((hitsOf[item.id] || {}).transcript || []).map((hit) => el("li", { class: "said" },
    el("a", { class: "time", href: hit.link.replace(/^\/?/, ""), title: "Play from here" }, hit.atSeconds === null ? "--:--" : clock(hit.atSeconds)),
    hit.version > 1 ? ` v${hit.version} ` : " ", ...snippet(hit)));
  const cards = page.items.map((item) => assetCard(item, {
    below: said(item).length ? el("ul", { class: "snippets" }, said(item)) : null,
    actions: collectButton(item),
  }));
  put(main, 
    el("h1", {}, `Search: ${values.q || ""}`),
    filterForm("search", ["type", "status", "tag", "since", "until"]),
    cards.length ? el("div", { class: "grid", id: "results" }, cards) : el("p", { class: "empty", id: "empty" }, "Nothing matches. Words and \"phrases\" must all occur, as whole words, in a name, tag, description, prompt, trigger word or transcript."),
    pager("search", page),
  );
  // Keep the words when the filters change.
  document.getElementById("filters").append(el("input", { type: "hidden", name: "q", value: values.q || "" }));
}

// --- spend and budgets ---------------------------------------------------------------------------

function thisMonth() {
  return new Date().toISOString().slice(0, 7);
}

function meter(spent, limit, label) {
  const fraction = limit ? Math.min(1, spent / limit) : 0;
  const fill = el("div", {});
  fill.style.width = `${(fraction * 100).toFixed(1)}%`;
  const state = limit && spent >= limit ? "meter over" : limit && spent >= 0.8 * limit ? "meter near" : "meter";
  return el("div", { class: state, role: "meter", "aria-valuenow": spent.toFixed(4), "aria-valuemax": limit || 0, "aria-label": label }, fill);
}

function spendTable(id, title, entries) {
  if (!entries.length) return null;
  const top = Math.max(...entries.map(([, v]) => v), 0.000001);
  return [el("h2", {}, title), el("table", { id, class: "stack" },
    entries.map(([key, value]) => el("tr", { "data-key": key },
      el("td", { "data-label": title.split(" ").pop() }, key),
      el("td", { "data-label": "USD" }, usd(value)),
      el("td", {}, meter(value, top, `${key}: ${usd(value)}`)))))];
}

async function spend() {
  const values = filterValues();
  const [stats, budget] = await Promise.all([api("/api/assets/stats", { owner: values.owner }), api("/ui/budget")]);
  const month = thisMonth();
  const monthSpend = stats.spend.byMonth[month] || 0;
  const owners = await Promise.all(budget.owners
    .filter((b) => !values.owner || b.owner === values.owner)
    .map(async (b) => {
      const own = budget.owners.length === 1 && !session.admin ? stats : await api("/api/assets/stats", { owner: b.owner }).catch(() => null);
      return { ...b, spent: own ? (own.spend.byMonth[month] || 0) : 0 };
    }));
  const budgets = owners.map((b) => el("tr", { "data-owner": b.owner },
    el("td", { "data-label": "owner" }, b.owner),
    el("td", { "data-label": month }, usd(b.spent)),
    el("td", { "data-label": "budget" }, b.monthlyUsd === null ? "no limit" : `${usd(b.monthlyUsd)} (${b.source})`),
    el("td", {}, b.monthlyUsd === null ? "" : [meter(b.spent, b.monthlyUsd, `${b.owner}'s budget spent`),
      el("span", { class: "meta" }, b.spent >= b.monthlyUsd ? "spent: new runs wait (BudgetExceeded) until next month or a higher budget" : `${usd(b.monthlyUsd - b.spent)} left`)])));
  const namespaceLimits = Object.entries(budget.namespaces);
  put(main, 
    el("h1", {}, "Spend and budgets"),
    session.admin ? filterForm("spend", []) : null,
    el("div", { class: "tiles", id: "spend-tiles" },
      el("div", { class: "tile", id: "tile-month" }, el("div", { class: "meta" }, `Provider spend in ${month}`), el("div", { class: "value" }, usd(monthSpend))),
      el("div", { class: "tile", id: "tile-total" }, el("div", { class: "meta" }, "Provider spend, all time"), el("div", { class: "value" }, usd(stats.spend.totalUsd))),
      el("div", { class: "tile", id: "tile-storage" }, el("div", { class: "meta" }, `Storage: ${stats.totalGB.toFixed(3)} GiB`), el("div", { class: "value" }, usd(stats.estimatedMonthlyCost), el("span", { class: "unit" }, " a month")),
        el("div", { class: "meta" }, `at $${stats.pricePerGbMonth}/GiB-month`)),
      el("div", { class: "tile", id: "tile-records" }, el("div", { class: "meta" }, "Records (versions)"), el("div", { class: "value" }, `${stats.totalJobs} (${stats.totalVersions})`),
        el("div", { class: "meta" }, Object.entries(stats.byStatus).map(([k, v]) => `${v} ${k}`).join(", ")))),
    el("h2", {}, "Monthly budgets"),
    owners.length ? el("table", { id: "budgets", class: "stack" },
      el("tr", { class: "head" }, ["owner", `spent in ${month}`, "budget", ""].map((h) => el("th", {}, h))), budgets) : el("p", { class: "empty" }, "No owner budgets apply."),
    el("p", { class: "meta", id: "namespace-budgets" },
      budget.namespaceMonthlyUsd !== null || namespaceLimits.length
        ? `Namespace budgets: ${budget.namespaceMonthlyUsd !== null ? `${usd(budget.namespaceMonthlyUsd)} each` : "none by default"}${namespaceLimits.length ? `; ${namespaceLimits.map(([k, v]) => `${k} ${usd(v)}`).join(", ")}` : ""}. `
        : "No namespace budgets are set in the chart. ",
      "A namespace's own contentgen.io/budget annotation is enforced by the operator too; a run over budget waits Pending with the reason BudgetExceeded."),
    spendTable("spend-by-month", "Spend by month", Object.entries(stats.spend.byMonth).sort().reverse()),
    spendTable("spend-by-type", "Spend by type", Object.entries(stats.spend.byType)),
    session.admin ? spendTable("spend-by-owner", "Spend by owner", Object.entries(stats.spend.byOwner).sort((a, b) => b[1] - a[1])) : null,
    stats.spend.totalUsd ? null : el("p", { class: "empty" }, "Nothing has cost anything yet (offline runs are free)."),
  );
}

// --- create forms ----------------------------------------------------------------------------------

// A Kubernetes name (RFC 1123 subdomain), in words and as the check.
const NAME_RULE = "lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253";
const NAME_PATTERN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

// A field error as a person reads it: a name's pattern said in words.
function inWords(problem) {
  return /should match pattern|does not match/i.test(problem.message || "") && /(^|\.)name$/.test(problem.field || "") ? NAME_RULE : problem.message;
}

// The provider a create runs with. An API that runs offline runs every create offline whatever
// it names: the only choice shown is that one.
function providerField(options, chosen) {
  if (config.offline) {
    return field("Provider", select("provider", [["offline", "offline: free placeholders"]], "offline"), false,
      "this API runs every create offline (started with --offline)");
  }
  return field("Provider", select("provider", options, chosen));
}

function field(label, input, wide, hint) {
  return el("label", { class: wide ? "wide" : undefined }, label, input, hint ? el("span", { class: "meta" }, hint) : null);
}

function select(name, options, chosen) {
  return el("select", { name, id: `f-${name}` }, options.map(([value, label]) => el("option", { value, selected: value === chosen }, label)));
}

function input(name, attrs) {
  return el("input", { name, id: `f-${name}`, ...attrs });
}

// Which form control a field path of an error names (spec.source.url -> source).
const FIELD_INPUTS = {
  "metadata.name": "name", "metadata.namespace": "namespace", "spec.owner": "owner", "spec.prompt": "prompt",
  "spec.negativePrompt": "negativePrompt", "spec.numImages": "numImages", "spec.imageSize": "imageSize", "spec.seed": "seed",
  "spec.model": "model", "spec.loras": "lora", "spec.source": "source", "spec.triggerWord": "triggerWord",
  "spec.training.steps": "steps", "spec.languageCode": "languageCode", "spec.tags": "tags", "spec.description": "description",
  "spec.provider": "provider", "spec.durationSeconds": "durationSeconds", "spec.fps": "fps", "spec.numFrames": "durationSeconds",
  "spec.imageRef": "imageRef", "spec.image": "imageRef", "spec.resolution": "resolution", "spec.aspectRatio": "resolution",
};

function inputFor(form, path) {
  const key = Object.keys(FIELD_INPUTS).filter((k) => path === k || path.startsWith(`${k}.`) || path.startsWith(`${k}[`)).sort((a, b) => b.length - a.length)[0];
  return key ? form.querySelector(`[name=${FIELD_INPUTS[key]}]`) : null;
}

function specOf(kind, data) {
  const text = (name) => (data.get(name) || "").toString().trim();
  const number = (name) => (text(name) === "" ? undefined : Number(text(name)));
  const spec = {};
  if (text("owner")) spec.owner = text("owner");
  if (kind === "ImageGeneration") {
    spec.prompt = text("prompt");
    if (text("negativePrompt")) spec.negativePrompt = text("negativePrompt");
    if (text("model")) spec.model = text("model");
    spec.imageSize = text("imageSize");
    spec.numImages = number("numImages");
    if (number("seed") !== undefined) spec.seed = number("seed");
    if (text("lora")) {
      const loraRef = { name: text("lora") };
      if (text("loraVersion")) loraRef.version = Number(text("loraVersion"));
      spec.loras = [{ loraRef, scale: number("scale") ?? 1 }];
      spec.model = "flux-lora";
    }
  } else if (kind === "VideoGeneration") {
    spec.prompt = text("prompt");
    if (text("model")) spec.model = text("model");
    if (number("durationSeconds") !== undefined) spec.durationSeconds = number("durationSeconds");
    if (number("fps") !== undefined) spec.fps = number("fps");
    if (text("resolution")) spec.resolution = text("resolution");
    if (number("seed") !== undefined) spec.seed = number("seed");
    if (text("imageRef")) spec.imageRef = { name: text("imageRef") };
  } else if (kind === "LoraTraining") {
    spec.source = { url: text("source") };
    spec.triggerWord = text("triggerWord");
    if (number("steps") !== undefined) spec.training = { steps: number("steps") };
  } else {
    spec.source = { url: text("source") };
    if (text("languageCode")) spec.languageCode = text("languageCode");
    if (data.get("speakerLabels")) spec.speakerLabels = true;
  }
  if (text("provider")) spec.provider = text("provider");
  const tags = text("tags").split(",").map((t) => t.trim()).filter(Boolean);
  if (tags.length) spec.tags = tags;
  if (text("description")) spec.description = text("description");
  return spec;
}

const CREATE_KINDS = {
  image: { kind: "ImageGeneration", label: "Images", example: "imagegeneration.yaml" },
  lora: { kind: "LoraTraining", label: "LoRA", example: "loratraining.yaml" },
  transcript: { kind: "Transcription", label: "Transcript", example: "transcription.yaml" },
  video: { kind: "VideoGeneration", label: "Video", example: "videogeneration.yaml" },
};
const VIDEO_MODELS = ["wan-2.2-t2v", "wan-2.2-i2v", "ltx-video-13b", "kling-2.5-turbo", "wan-1.3b-t2v", "wan-14b-i2v", "ltx-video"];

async function createView(which) {
  const chosen = CREATE_KINDS[which] ? which : "image";
  const { kind, example } = CREATE_KINDS[chosen];
  const values = filterValues();
  const tabs = el("div", { class: "tabs", role: "tablist", id: "create-tabs" }, Object.entries(CREATE_KINDS).map(([key, k]) =>
    el("a", { role: "tab", class: "button", href: `#/create/${key}`, "aria-selected": String(key === chosen), "data-tab": key }, k.label)));
  if (!creates()) {
    put(main, el("h1", {}, "Create"), tabs,
      el("p", { class: "notice", id: "create-off" }, "This API does not create resources (CONTENTGEN_API_CREATE=off, or no Kubernetes API to create them in). Apply a manifest instead: ",
        el("code", {}, `kubectl apply -f examples/${example}`), ", or copy one from any record with Copy as manifest."));
    return;
  }
  let prefill = {};
  if (values.from) { // Edit and run: the version's settings
    const record = await api(`/api/jobs/${ref(values.from)}`);
    const version = record.versions.find((v) => String(v.version) === values.version) || record.versions[record.versions.length - 1];
    prefill = { ...((version && version.spec) || {}) };
  }
  const pick = (name, fallback) => values[name] ?? (prefill[name] !== undefined ? String(prefill[name]) : fallback);
  // An admin may act for any owner (a name to type); others choose among their own.
  const owners = session.admin
    ? field("Owner", [input("owner", { value: prefill.owner || session.owner, list: "owner-list", required: true }),
      el("datalist", { id: "owner-list" }, session.owners.map((o) => el("option", { value: o })))])
    : session.owners.length > 1
      ? field("Owner", el("select", { name: "owner", id: "f-owner" }, session.owners.map((o) => el("option", { value: o, selected: o === (prefill.owner || session.owner) }, o))))
      : null;
  const common = [
    field("Name (optional; the same name again is an idempotent repeat)", input("name", { placeholder: "a fresh name", maxlength: 253 }), false, NAME_RULE),
    field("Namespace", input("namespace", { value: values.namespace || config.defaultNamespace, required: true })),
    owners,
  ];
  const tail = [
    field("Tags (comma-separated)", input("tags", { value: values.tags || (prefill.tags || []).join(", ") })),
    field("Description", input("description", { value: pick("description", ""), maxlength: 1000 })),
  ];
  let fields;
  if (kind === "ImageGeneration") {
    const loraList = await api("/api/assets/loras", { limit: 200 }).catch(() => ({ items: [] }));
    const prefillLora = ((prefill.loras || [])[0] || {}).loraRef || {};
    const chosenLora = values.lora || prefillLora.name || "";
    const usable = loraList.items.filter((l) => l.versions.length); // a LoRA whose runs all failed has nothing to use
    const loraSelect = select("lora", [["", "none"], ...usable.map((l) => [l.name, `${l.namespace}/${l.name} (${l.triggerWord}, ${l.versions.length} version(s))`])], chosenLora);
    const versionSelect = select("loraVersion", [["", "its latest version"]], "");
    const fillVersions = () => {
      const lora = usable.find((l) => l.name === loraSelect.value);
      put(versionSelect, el("option", { value: "" }, "its latest version"),
        ...(lora ? lora.versions.map((v) => el("option", { value: v.version, selected: String(v.version) === String(values.loraVersion || prefillLora.version || "") },
          `v${v.version}${v.likeness ? ` · likeness ${v.likeness.verdict}${v.likeness.median == null ? "" : ` ${num(v.likeness.median)}`}` : ""}`)) : []));
    };
    loraSelect.addEventListener("change", fillVersions);
    fillVersions();
    fields = [
      field("Prompt", el("textarea", { name: "prompt", id: "f-prompt", rows: 3, required: true, maxlength: 4000 }, pick("prompt", "")), true),
      field("Negative prompt", el("textarea", { name: "negativePrompt", id: "f-negativePrompt", rows: 2, maxlength: 4000 }, pick("negativePrompt", "")), true),
      field("Model", select("model", [["", "default (flux-dev)"], ...MODELS.map((m) => [m, m])], pick("model", ""))),
      field("Size", select("imageSize", SIZES.map((s) => [s, s]), pick("imageSize", "landscape_4_3"))),
      field("Images", input("numImages", { type: "number", min: 1, max: 8, value: pick("numImages", "1") })),
      field("Seed", input("seed", { type: "number", min: 0, max: 4294967295, placeholder: "random", value: values.from ? "" : pick("seed", "") }), false, values.from ? "empty: a new seed" : ""),
      field("LoRA", loraSelect), field("LoRA version", versionSelect),
      field("LoRA scale", input("scale", { type: "number", min: 0, max: 2, step: 0.05, value: String(((prefill.loras || [])[0] || {}).scale ?? 1) })),
      providerField([["", "default (fal)"], ["fal", "fal"], ["offline", "offline (free placeholder images)"]], pick("provider", "")),
    ];
  } else if (kind === "VideoGeneration") {
    fields = [
      field("Prompt", el("textarea", { name: "prompt", id: "f-prompt", rows: 3, required: true, maxlength: 4000 }, pick("prompt", "")), true),
      field("Model", select("model", [["", "default (wan-2.2-t2v)"], ...VIDEO_MODELS.map((m) => [m, m])], pick("model", ""))),
      field("Animate the images of (optional)", input("imageRef", { placeholder: "an ImageGeneration's name", value: (prefill.imageRef || {}).name || values.imageRef || "" }), false, "image-to-video models"),
      field("Length (seconds)", input("durationSeconds", { type: "number", min: 0, max: 120, step: 0.5, placeholder: "the model's default", value: pick("durationSeconds", "") })),
      field("Frame rate", input("fps", { type: "number", min: 1, max: 60, placeholder: "the model's default", value: pick("fps", "") })),
      field("Resolution", select("resolution", [["", "the model's default"], ["480p", "480p"], ["580p", "580p"], ["720p", "720p"]], pick("resolution", ""))),
      field("Seed", input("seed", { type: "number", min: 0, max: 4294967295, placeholder: "random", value: values.from ? "" : pick("seed", "") }), false, values.from ? "empty: a new seed" : ""),
      providerField([["", "default (fal)"], ["fal", "fal"], ["offline", "offline (a free placeholder video)"], ["cluster", "cluster"]], pick("provider", "")),
    ];
  } else if (kind === "LoraTraining") {
    fields = [
      field("Source video URL", input("source", { type: "text", required: true, placeholder: "https://…/video.mp4 or s3://bucket/key", value: values.source || "" }), true),
      field("Trigger word", input("triggerWord", { required: true, maxlength: 32, value: values.triggerWord || "" }), false, "the word that calls the LoRA in a prompt"),
      field("Training steps", input("steps", { type: "number", min: 100, max: 10000, placeholder: "1000" })),
      providerField([["", "default (fal)"], ["fal", "fal"], ["offline", "offline (free, placeholder weights)"]], values.provider || ""),
    ];
  } else {
    fields = [
      field("Audio or video URL", input("source", { type: "text", required: true, placeholder: "https://…/audio.mp3", value: values.source || "" }), true),
      field("Language code", input("languageCode", { placeholder: "detected", maxlength: 10 })),
      el("label", { class: "check" }, input("speakerLabels", { type: "checkbox", checked: true }), "Label speakers"),
      providerField([["", "default (assemblyai)"], ["assemblyai", "assemblyai"], ["offline", "offline (free placeholder)"]], values.provider || ""),
    ];
  }
  const status = el("div", { id: "create-status" });
  const form = el("form", { class: "create", id: "create-form", "data-kind": kind, novalidate: true },
    ...fields, ...common, ...tail,
    el("div", { class: "buttons" }, el("button", { type: "submit", id: "create-submit" }, `Create ${kind}`),
      el("span", { class: "meta" }, config.create === "local" ? "runs on this machine, one at a time" : "created in the cluster; the operator runs it"), status));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const old of form.querySelectorAll(".field-error")) old.remove();
    for (const old of form.querySelectorAll(".invalid")) old.classList.remove("invalid");
    const data = new FormData(form);
    const name = (data.get("name") || "").toString().trim();
    if (name && !NAME_PATTERN.test(name)) { // said in words before the API says it as a pattern
      const control = form.querySelector("[name=name]");
      control.classList.add("invalid");
      control.after(el("span", { class: "field-error", "data-field": "metadata.name" }, `metadata.name: ${NAME_RULE}`));
      notice(status, `The name “${name}” cannot be used: ${NAME_RULE}`, true).id = "create-error";
      return;
    }
    const metadata = { namespace: (data.get("namespace") || "").toString().trim() || undefined };
    if ((data.get("name") || "").toString().trim()) metadata.name = data.get("name").toString().trim();
    try {
      const made = await send("POST", "/api/resources", { kind, metadata, spec: specOf(kind, data) });
      created.add(made.jobId);
      location.hash = `#/job/${ref(made.jobId)}`;
    } catch (error) {
      notice(status, error.message, true).id = "create-error";
      for (const problem of error.fields || []) {
        const control = inputFor(form, problem.field || "");
        if (!control) continue;
        control.classList.add("invalid");
        control.after(el("span", { class: "field-error", "data-field": problem.field }, `${problem.field}: ${inWords(problem)}`));
      }
    }
  });
  put(main, el("h1", {}, "Create"), tabs, form,
    el("p", { class: "meta" }, "Everything a manifest can say is in the API reference; ", el("code", {}, `kubectl apply -f examples/${example}`), " does the same."));
}

// --- session and routing ----------------------------------------------------------------------

function chrome(visible) {
  for (const id of ["nav", "search", "who"]) document.getElementById(id).hidden = !visible;
  // Log out only where there is a session to end: a token's cookie, or the proxy's sign-out page.
  const canLogOut = visible && session && (["token", "kubernetes"].includes(session.via) || (session.via === "proxy" && config.logoutUrl));
  document.getElementById("logout").hidden = !canLogOut;
}

function showLogin() {
  session = null;
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

// --- sharing, collections and usage (issue 38; docs/sharing.md) ----------------------------

// An asset's usage: downloads, last access, storage and its monthly cost, where it was used,
// your collections that hold it, and, to its owner, whom it is shared with. Loaded after the
// page, into its own section.
function usagePanel(record) {
  const box = el("section", { id: "usage", class: "usage" }, el("h2", {}, "Usage"), el("p", { class: "meta" }, "loading…"));
  api(`/api/assets/${ref(record.id)}/usage`).then((u) => {
    const used = u.usedIn.map((c) => el("li", {},
      el("a", { href: `#/${KIND_LINK[c.kind] || "job"}/${ref(c.id)}` }, `${c.namespace}/${c.name}`),
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
        el("dt", {}, "used in"), el("dd", { id: "usage-used" }, used.length ? el("ul", { class: "plain" }, used) : (record.kind === "LoraTraining" ? "nothing yet" : "-"),
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
function grantsForm(shares, path, prefix) {
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
function collectButton(record) {
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
function assetCard(item, { below = null, actions = [] } = {}) {
  const link = `#/${KIND_LINK[item.kind] || "job"}/${ref(item.id)}`;
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

async function collectionsView() {
  const found = await api("/api/collections");
  const status = el("div", { id: "collection-status" });
  const name = el("input", { name: "name", required: true, pattern: "[0-9A-Za-z][0-9A-Za-z._-]*", maxlength: 100, placeholder: "name", "aria-label": "Name" });
  const description = el("input", { name: "description", maxlength: 2000, placeholder: "what it is for", "aria-label": "Description" });
  const form = el("form", { id: "new-collection", class: "inline", onsubmit: async (event) => {
    event.preventDefault();
    try {
      const made = await send("POST", "/api/collections", { name: name.value.trim(), description: description.value.trim() });
      location.hash = `#/collection/${encodeURIComponent(made.id)}`;
    } catch (error) { notice(status, error.message || String(error), true); }
  } }, name, description, el("button", { type: "submit" }, "New collection"));
  const rows = found.items.map((c) => el("tr", { "data-id": c.id },
    el("td", { "data-label": "name" }, el("a", { href: `#/collection/${encodeURIComponent(c.id)}` }, c.name)),
    el("td", { "data-label": "owner" }, c.owner), el("td", { "data-label": "assets" }, String(c.memberCount)),
    el("td", { "data-label": "access" }, c.access === "owner" ? "yours" : `shared with you (${c.access})`),
    el("td", { "data-label": "about" }, c.description || "")));
  put(main, el("h1", {}, "Collections"), form, status,
    rows.length ? el("table", { id: "collections", class: "stack" }, rows)
      : el("p", { class: "empty", id: "empty" }, "No collection yet: name one above, then add assets on its page or with + Collection on a card in the gallery or the search."));
}

async function collectionView(id) {
  const values = filterValues();
  const c = values.q ? await api(`/api/collections/${encodeURIComponent(id)}/search`, { q: values.q }) : await api(`/api/collections/${encodeURIComponent(id)}`);
  const status = el("div", { id: "collection-status" });
  const mine = c.access === "owner";
  const q = el("input", { type: "search", name: "q", value: values.q || "", placeholder: "Search within", "aria-label": "Search within" });
  const searchForm = el("form", { id: "collection-search", class: "inline", onsubmit: (event) => {
    event.preventDefault();
    location.hash = `#/collection/${encodeURIComponent(c.id)}${q.value.trim() ? `?${new URLSearchParams({ q: q.value.trim() })}` : ""}`;
  } }, q, el("button", { type: "submit" }, "Search"));
  // Assets to add: found by words (the search), each a card with an Add button.
  const words = el("input", { type: "search", name: "q", placeholder: "Find assets to add: words of a name, prompt or tag", "aria-label": "Find assets to add" });
  const found = el("div", { class: "grid", id: "add-candidates" });
  const addForm = mine ? el("form", { id: "add-member", class: "inline", onsubmit: async (event) => {
    event.preventDefault();
    if (!words.value.trim()) return;
    try {
      const page = await api("/api/assets/search", { q: words.value.trim(), limit: 12 });
      const inIt = new Set(c.items.map((item) => item.id));
      put(found, page.items.length ? page.items.map((item) => assetCard(item, { actions: inIt.has(item.id) ? el("span", { class: "meta" }, "in it") : el("button", { type: "button", class: "add", onclick: async () => {
        try { await send("POST", `/api/collections/${encodeURIComponent(c.id)}/members`, { ref: item.id }); await route(); }
        catch (error) { notice(status, error.message || String(error), true); }
      } }, "Add") })) : el("p", { class: "empty" }, "Nothing matches those words."));
    } catch (error) { notice(status, error.message || String(error), true); }
  } }, words, el("button", { type: "submit" }, "Find")) : null;
  const cards = c.items.map((item) => assetCard(item, { actions: mine ? el("button", { type: "button", class: "remove", onclick: async () => {
    try { await send("DELETE", `/api/collections/${encodeURIComponent(c.id)}/members/${encodeURIComponent(item.id)}`); await route(); }
    catch (error) { notice(status, error.message || String(error), true); }
  } }, "Remove") : null }));
  const shares = (c.shares || []).map((s) => `${s.to} (${s.access})`).join(", ");
  put(main, el("h1", {}, `Collection ${c.name}`),
    el("dl", { class: "facts" },
      el("dt", {}, "owner"), el("dd", {}, c.owner, mine ? "" : ` (shared with you: ${c.access})`),
      el("dt", {}, "about"), el("dd", {}, c.description || "-"),
      el("dt", {}, "assets"), el("dd", { id: "member-count" }, String(c.memberCount)),
      mine ? [el("dt", {}, "shared with"), el("dd", { id: "collection-shares" }, shares || "nobody")] : [],
      el("dt", {}, "download"), el("dd", {}, c.access === "use" ? "use only: no files"
        : el("a", { href: `/api/collections/${encodeURIComponent(c.id)}/archive`, id: "archive", download: `${c.name}.zip` }, "Download as zip"))),
    mine ? [el("h2", {}, "Share it"), grantsForm(c.shares, `/api/collections/${encodeURIComponent(c.id)}/shares`, "collection-share")] : null,
    el("h2", {}, values.q ? `Its assets matching “${values.q}”` : "Its assets"),
    searchForm, status,
    cards.length ? el("div", { class: "grid", id: "members" }, cards)
      : el("p", { class: "empty", id: "empty" }, values.q ? "No asset of it matches." : mine ? "No assets in it yet: find them below, or use + Collection on a card in the gallery or the search." : "No assets in it yet."),
    mine ? [el("h2", {}, "Add assets"), addForm, found] : null);
}

// --- notifications: the webhook delivery log (issue 38; docs/notifications.md) ---------------------

const DELIVERY_STATUSES = ["pending", "retrying", "delivered", "failed", "disabled"];
const LOGGED_ATTEMPTS = 20; // the API shows a delivery's newest 20 attempts

// A receiver's answer code as a chip; 0: no answer (the attempt's error says why).
function answerCode(a) {
  const ok = a.code >= 200 && a.code < 300;
  return el("span", { class: `code ${ok ? "ok" : "bad"}`, "data-code": a.code }, a.code ? String(a.code) : "no answer");
}

// What the receiver answered (its first bytes), or why there was no answer. Receivers write it:
// it is text, never HTML.
function answerText(a, short) {
  const text = a.code ? a.answer : (a.error || a.answer);
  if (!text) return "";
  return short && text.length > 100 ? `${text.slice(0, 100)}…` : text;
}

function eventName(type) {
  return (type || "").replace(/^io\.contentgen\./, "");
}

function attemptsTable(d) {
  if (!d.attempts.length) return el("p", { class: "meta" }, "No attempt yet.");
  return el("table", { class: "attempts stack" },
    el("tr", { class: "head" }, ["attempt", "at", "code", "answer", "error"].map((h) => el("th", {}, h))),
    d.attempts.map((a) => el("tr", { "data-attempt": a.attempt },
      el("td", { "data-label": "attempt" }, a.attempt ? String(a.attempt) : "given up"),
      el("td", { "data-label": "at" }, when(a.at)),
      el("td", { "data-label": "code" }, answerCode(a)),
      el("td", { "data-label": "answer" }, a.answer ? el("pre", { class: "answer" }, a.answer) : "-"),
      el("td", { "data-label": "error" }, a.error || "-"))));
}

// Send the event again (after fixing a receiver): in a cluster the API sets the Notification's
// annotation contentgen.io/replay and the operator sends it; on a laptop the answer says why not.
function replayButton(d) {
  const status = el("div", { class: "replay-status" });
  const button = el("button", { type: "button", class: "replay" }, "Send again");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const asked = await send("POST", `/api/notifications/deliveries/${encodeURIComponent(d.id)}/replay`);
      notice(status, asked.message, false);
    } catch (error) {
      notice(status, error.message || String(error), true);
    } finally {
      button.disabled = false;
    }
  });
  return el("div", { class: "delivery-actions" }, button, status);
}

// A delivery's row and the row under it that a click opens: every attempt logged.
function deliveryRows(d, columns) {
  const last = d.attempts[d.attempts.length - 1];
  const resource = `${d.resource.kind || "?"}/${d.resource.name || "?"}`;
  const toggle = el("button", { type: "button", class: "expand", "aria-expanded": "false", "aria-label": `Attempts of ${eventName(d.type)} (${resource})` }, "▸");
  const logged = d.attemptCount > d.attempts.length || d.replays ? ` (the newest ${LOGGED_ATTEMPTS} are kept)` : "";
  const detail = el("tr", { class: "delivery-detail", "data-for": d.id, hidden: true },
    el("td", { colspan: columns },
      el("dl", { class: "facts" },
        el("dt", {}, "event"), el("dd", {}, el("code", {}, d.eventId), " ", d.type),
        el("dt", {}, "resource"), el("dd", {}, resource, d.resource.uid ? el("span", { class: "meta" }, ` uid ${d.resource.uid}`) : ""),
        el("dt", {}, "attempts"), el("dd", {}, `${d.attempts.length} logged${logged}`, d.replays ? `, sent again ${d.replays}×` : "")),
      attemptsTable(d),
      replayButton(d)));
  const flip = () => {
    const open = detail.hidden;
    detail.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    toggle.textContent = open ? "▾" : "▸";
  };
  toggle.addEventListener("click", flip);
  const link = d.resource.uid && KIND_LINK[d.resource.kind]
    ? el("a", { href: `#/${KIND_LINK[d.resource.kind]}/${ref(d.resource.uid)}` }, resource) : resource;
  const row = el("tr", { class: "delivery", "data-id": d.id, "data-status": d.status, "data-event": d.eventId },
    el("td", { class: "toggle" }, toggle),
    el("td", { "data-label": "event" }, el("span", { title: d.type }, eventName(d.type))),
    el("td", { "data-label": "resource" }, link),
    session.admin ? el("td", { "data-label": "owner", class: "owner" }, d.owner) : null,
    el("td", { "data-label": "status" }, badge(d.status)),
    el("td", { "data-label": "attempts", class: "attempt-count" }, String(d.attemptCount)),
    el("td", { "data-label": "created" }, when(d.createdAt)),
    el("td", { "data-label": "next attempt" }, d.nextAttemptAt ? when(d.nextAttemptAt) : "-"),
    el("td", { "data-label": "last answer", class: "last-answer" }, last ? [answerCode(last), " ", answerText(last, true)] : "none yet"));
  row.addEventListener("click", (event) => { if (!event.target.closest("a, button")) flip(); });
  return [row, detail];
}

function notificationsEmpty() {
  return el("div", { class: "empty", id: "empty" },
    el("p", {}, "No webhook deliveries yet."),
    el("p", {}, "A Notification is a resource in a namespace that sends the events of your resources there (succeeded, failed, likenessPoor, budgetReached, queued) to a URL of yours as signed webhooks, retried until the receiver answers. Every delivery shows here with its attempts and the receiver's answers."),
    el("p", {}, "To make one, apply a Notification and its Secret: see ", el("code", {}, "docs/notifications.md"),
      " and ", el("a", { href: "/docs#/notifications", id: "notifications-docs" }, "the API reference"),
      config.create === "local" ? ". On a laptop nothing is delivered: the operator sends them in a cluster." : "."));
}

// Deliveries newest first, grouped by Notification; filters: a Notification, a status.
async function notificationsView() {
  const values = filterValues();
  const [first, second] = (values.notification || "").split("/");
  const [namespace, name] = second === undefined ? [undefined, first] : [first, second];
  const filtered = Boolean(values.notification || values.status);
  const [found, all] = await Promise.all([
    api("/api/notifications/deliveries", { namespace, notification: name, status: values.status, limit: 200 }),
    filtered ? api("/api/notifications/deliveries", { limit: 200 }) : null,
  ]);
  const known = [...new Set((all || found).items.map((d) => `${d.notification.namespace}/${d.notification.name}`))].sort();
  if (values.notification && !known.includes(values.notification)) known.push(values.notification);
  const notificationSelect = el("select", { name: "notification", id: "filter-notification" }, el("option", { value: "" }, "every Notification"),
    known.map((n) => el("option", { value: n, selected: values.notification === n }, n)));
  const statusSelect = el("select", { name: "status", id: "filter-delivery-status" }, el("option", { value: "" }, "any status"),
    DELIVERY_STATUSES.map((s) => el("option", { value: s, selected: values.status === s }, s)));
  const form = el("form", { class: "filters", id: "filters" },
    el("label", {}, "notification", notificationSelect), el("label", {}, "status", statusSelect), el("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    for (const [key, value] of new FormData(form)) if (value) query.set(key, value);
    location.hash = `#/notifications${query.toString() ? "?" + query : ""}`;
  });
  const groups = new Map(); // newest first: a group where its newest delivery is
  for (const d of found.items) {
    const key = `${d.notification.namespace}/${d.notification.name}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(d);
  }
  const head = ["", "event", "resource", session.admin ? "owner" : null, "status", "attempts", "created", "next attempt", "last answer"].filter((h) => h !== null);
  const sections = [...groups].map(([key, items]) => {
    const counts = DELIVERY_STATUSES.filter((s) => items.some((d) => d.status === s))
      .map((s) => el("span", { class: `badge status-${s}` }, `${items.filter((d) => d.status === s).length} ${s}`));
    return el("section", { class: "notification-group", "data-notification": key },
      el("h2", {}, el("a", { href: `#/notifications?${new URLSearchParams({ notification: key })}` }, key), " ", counts),
      el("table", { class: "deliveries stack" }, el("tr", { class: "head" }, head.map((h) => el("th", {}, h))),
        items.flatMap((d) => deliveryRows(d, head.length))));
  });
  put(main,
    el("h1", {}, "Notifications"),
    el("p", { class: "meta" }, "Webhook deliveries of your resources' events, newest first, by Notification; a row opens to every attempt (docs/notifications.md)."),
    known.length ? form : null,
    sections.length ? sections
      : filtered && known.length ? el("p", { class: "empty", id: "empty" }, "No deliveries match these filters. ", el("a", { href: "#/notifications" }, "Clear the filters"))
        : notificationsEmpty(),
    found.items.length >= 200 ? el("p", { class: "meta" }, "The newest 200 are shown; filter by Notification or status for others.") : null);
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

async function route() {
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

async function start() {
  try {
    config = await api("/ui/config");
  } catch (ignored) { /* keep the defaults */ }
  try {
    session = await api("/ui/session");
  } catch (error) {
    showLogin();
    return;
  }
  chrome(true);
  document.getElementById("who").textContent = session.admin ? `${session.user} (admin)` : session.owners.join(", ");
  document.getElementById("nav-create").hidden = !creates();
  await route();
}

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
