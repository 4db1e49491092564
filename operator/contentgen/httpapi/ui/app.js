// contentgen web UI: a page over the catalog API (same origin, session cookie). Vanilla JS, no
// dependencies, nothing fetched from elsewhere. Every value from the API is put into the page as
// text (textContent), never as HTML.
"use strict";

const main = document.getElementById("main");
const streams = new Set(); // EventSources of the current view (one at most), closed when it changes
let session = null;

// --- helpers --------------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

class ApiFailure extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(path, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") query.set(key, value);
  }
  const url = query.toString() ? `${path}?${query}` : path;
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) {
    let code = "error";
    let message = response.statusText;
    try {
      const body = await response.json();
      code = body.error.code;
      message = body.error.message;
    } catch (ignored) { /* not JSON */ }
    throw new ApiFailure(response.status, code, message);
  }
  return response.json();
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

function when(text) {
  return text ? text.replace("T", " ").replace(/:\d\d(\.\d+)?Z$/, " UTC") : "-";
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

function downloadButton(id, uri, parts, label, version) {
  return el("a", { class: "button download", href: contentUrl(id, uri, parts, true, version), download: "" }, label);
}

function progressBar(percent, big) {
  const fill = el("div", {});
  fill.style.width = `${percent}%`; // CSSOM, which the page's CSP allows (style attributes it does not)
  return el("div", { class: big ? "progress big" : "progress", role: "progressbar", "aria-valuenow": percent }, fill);
}

function setProgress(bar, percent) {
  bar.firstChild.style.width = `${percent}%`;
  bar.setAttribute("aria-valuenow", percent);
}

function showError(error) {
  if (error instanceof ApiFailure && error.status === 401) {
    showLogin();
    return;
  }
  const text = error instanceof ApiFailure && error.status === 404 ? `Not found: ${error.message}` : error.message;
  main.replaceChildren(el("p", { class: "error", id: "error" }, text));
}

// --- filters (the API's vocabulary: status, since, until, model, tag, owner, sort, order) ----

function filterValues() {
  const hash = location.hash.split("?")[1] || "";
  return Object.fromEntries(new URLSearchParams(hash));
}

function filterForm(section, fields) {
  const values = filterValues();
  const inputs = {
    type: () => el("select", { name: "type" }, el("option", { value: "" }, "all kinds"),
      ["lora-training", "image-generation", "transcription"].map((t) => el("option", { value: t, selected: values.type === t }, t))),
    status: () => el("select", { name: "status" }, el("option", { value: "" }, "any but Deleted"),
      ["Pending", "Running", "Succeeded", "Failed", "Deleted"].map((s) => el("option", { value: s, selected: values.status === s }, s))),
    run: () => el("select", { name: "run" }, el("option", { value: "" }, "any latest run"),
      ["Pending", "Running", "Succeeded", "Failed", "Cancelled"].map((s) => el("option", { value: s, selected: values.run === s }, s))),
    since: () => el("input", { name: "since", type: "date", value: values.since || "" }),
    until: () => el("input", { name: "until", type: "date", value: values.until || "" }),
    model: () => el("select", { name: "model" }, el("option", { value: "" }, "any model"),
      ["flux-pro", "flux-dev", "flux-schnell", "flux-lora"].map((m) => el("option", { value: m, selected: values.model === m }, m))),
    tag: () => el("input", { name: "tag", value: values.tag || "", size: 10 }),
    owner: () => el("input", { name: "owner", value: values.owner || "", size: 10 }),
  };
  const shown = session && session.admin ? [...fields, "owner"] : fields;
  const form = el("form", { class: "filters", id: "filters" },
    shown.map((name) => el("label", {}, name, inputs[name]())),
    el("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    for (const [key, value] of new FormData(form)) if (value) query.set(key, value);
    location.hash = `#/${section}${query.toString() ? "?" + query : ""}`;
  });
  return form;
}

// --- views ----------------------------------------------------------------------------------

async function gallery() {
  const page = await api("/api/assets/images", { ...filterValues(), limit: 100 });
  const cards = [];
  for (const run of page.items) {
    for (const version of run.versions.slice().reverse()) { // every usable version, newest first
      const lora = (version.loras || []).find((l) => l.name || l.uid);
      version.images.forEach((image, n) => {
        cards.push(el("article", { class: "card image-card", "data-id": run.id, "data-version": version.version, "data-n": n + 1 },
          el("a", { href: `#/image/${ref(run.id)}` },
            el("img", { class: "thumb", src: thumbOf(run.id, image, version.version), alt: version.prompt || run.prompt, width: 240 })),
          el("div", { class: "title" }, version.prompt || run.prompt),
          el("div", { class: "meta" }, `${run.namespace}/${run.name} v${version.version} · ${version.model || run.model}`,
            lora ? ` · LoRA ${lora.name || lora.uid} v${lora.version}` : ""),
          el("div", {}, badge(run.status), downloadButton(run.id, image.uri, 1, "Download", version.version))));
      });
    }
  }
  main.replaceChildren(
    el("h1", {}, "Gallery"),
    filterForm("gallery", ["status", "model", "tag", "since", "until"]),
    cards.length ? el("div", { class: "grid", id: "gallery" }, cards) : el("p", { class: "empty" }, "No images."),
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
  const versions = run.versions.slice().reverse().map((version) => el("section", { class: "version", "data-version": version.version },
    el("h2", {}, `Version ${version.version}`),
    el("p", { class: "meta" }, `${version.prompt} · ${version.model} · ${when(version.createdAt)}`),
    el("div", { class: "images-large" }, version.images.map((image) => el("figure", {},
      el("img", { src: contentUrl(run.id, image.uri, 1, false, version.version), alt: version.prompt }),
      el("figcaption", { class: "meta" }, `${image.width}×${image.height}, ${bytes(image.sizeBytes)}`,
        image.seed !== null && image.seed !== undefined ? `, seed ${image.seed} ` : " ",
        downloadButton(run.id, image.uri, 1, "Download", version.version)))))));
  main.replaceChildren(
    el("h1", {}, `${run.namespace}/${run.name}`),
    el("dl", { class: "facts" },
      el("dt", {}, "prompt"), el("dd", {}, run.prompt),
      el("dt", {}, "model"), el("dd", {}, run.model),
      el("dt", {}, "status"), el("dd", {}, badge(run.status), runBadge(run.latestRun), run.latestRun.message ? ` ${run.latestRun.message}` : ""),
      el("dt", {}, "id"), el("dd", {}, el("code", {}, run.id))),
    el("h2", {}, "Lineage"),
    el("div", { class: "lineage", id: "lineage" },
      lineage.loras.length ? el("ol", {}, lineage.loras.map(lineageList)) : el("p", { class: "empty" }, "Made without LoRAs.")),
    ...(versions.length ? versions : [el("p", { class: "empty" }, "No images yet.")]),
  );
}

async function loras() {
  const page = await api("/api/assets/loras", { ...filterValues(), limit: 100 });
  const cards = page.items.map((lora) => {
    const latest = lora.versions[lora.versions.length - 1];
    return el("article", { class: "card lora-card", "data-id": lora.id },
      latest && latest.contactSheetThumbnailUri
        ? el("img", { class: "thumb", src: contentUrl(lora.id, latest.contactSheetThumbnailUri, 2, false, latest.version), alt: "contact sheet" })
        : null,
      el("a", { href: `#/lora/${ref(lora.id)}` }, el("div", { class: "title" }, `${lora.namespace}/${lora.name}`)),
      el("div", { class: "meta" }, `trigger word ${lora.triggerWord} · ${lora.versions.length} version(s)`),
      el("div", {}, badge(lora.status), runBadge(lora.latestRun)));
  });
  main.replaceChildren(
    el("h1", {}, "LoRAs"),
    filterForm("loras", ["status", "tag", "since", "until"]),
    cards.length ? el("div", { class: "grid", id: "loras" }, cards) : el("p", { class: "empty" }, "No LoRAs."),
  );
}

function imageRunCard(run) {
  return el("article", { class: "card made-with", "data-id": run.id },
    el("a", { href: `#/image/${ref(run.id)}` },
      run.thumbnails.slice(0, 1).map((uri) => el("img", { class: "thumb", src: contentUrl(run.id, uri, uri.includes("/thumbs/") ? 2 : 1, false, versionOf(uri)), alt: run.prompt, width: 240 })),
      el("div", { class: "title" }, run.prompt)),
    el("div", { class: "meta" }, `${run.namespace}/${run.name}`), badge(run.status));
}

async function loraView(id) {
  const [lora, lineage] = await Promise.all([api(`/api/jobs/${ref(id)}`), api(`/api/assets/${ref(id)}/lineage`)]);
  const versions = lineage.versions.slice().reverse().map((v) => el("section", { class: "version", "data-version": v.version },
    el("h2", {}, `Version ${v.version}`),
    el("dl", { class: "facts" },
      el("dt", {}, "created"), el("dd", {}, when(v.createdAt)),
      el("dt", {}, "trained"), el("dd", {}, `${v.steps} steps of ${v.trainingModel || "-"} on ${v.frames} images (${v.provider})`),
      el("dt", {}, "dataset"), el("dd", {}, v.datasetUri || "-"),
      el("dt", {}, "source video"), el("dd", { class: "source" }, v.sourceUrl || "-"),
      el("dt", {}, "weights"), el("dd", {}, `${bytes(v.sizeBytes)} `, downloadButton(lora.id, v.modelUri, 2, "Download model", v.version),
        " ", v.datasetUri ? downloadButton(lora.id, v.datasetUri, 2, "Download dataset", v.version) : null)),
    v.contactSheetUri
      ? el("a", { href: contentUrl(lora.id, v.contactSheetUri, 2, false, v.version) },
        el("img", { class: "contact-sheet", src: contentUrl(lora.id, v.contactSheetThumbnailUri || v.contactSheetUri, 2, false, v.version), alt: `contact sheet of version ${v.version}` }))
      : el("p", { class: "empty" }, "No contact sheet for this version."),
    el("h2", {}, `Images made with version ${v.version}`),
    v.images.length ? el("div", { class: "grid made-with-grid" }, v.images.map(imageRunCard)) : el("p", { class: "empty" }, "None yet.")));
  main.replaceChildren(
    el("h1", {}, `LoRA ${lora.namespace}/${lora.name}`),
    el("dl", { class: "facts" },
      el("dt", {}, "trigger word"), el("dd", { id: "trigger" }, lora.triggerWord),
      el("dt", {}, "status"), el("dd", {}, badge(lora.status), runBadge(lora.latestRun), lora.latestRun.message ? ` ${lora.latestRun.message}` : ""),
      el("dt", {}, "versions"), el("dd", {}, String(lora.versions.length)),
      el("dt", {}, "images made with it"), el("dd", {}, String(lineage.imagesTotal)),
      el("dt", {}, "id"), el("dd", {}, el("code", {}, lora.id))),
    ...versions,
  );
}

async function transcripts() {
  const page = await api("/api/assets/transcripts", { ...filterValues(), limit: 100 });
  const rows = page.items.map((t) => el("tr", { "data-id": t.id },
    el("td", {}, el("a", { href: `#/transcript/${ref(t.id)}` }, `${t.namespace}/${t.name}`)),
    el("td", {}, badge(t.status)),
    el("td", {}, `${t.wordCount} words, ${Math.round(t.durationSeconds)} s`),
    el("td", {}, when(t.createdAt))));
  main.replaceChildren(
    el("h1", {}, "Transcripts"),
    filterForm("transcripts", ["status", "tag", "since", "until"]),
    rows.length ? el("table", { id: "transcripts" }, el("tr", {}, el("th", {}, "name"), el("th", {}, "status"), el("th", {}, "length"), el("th", {}, "created")), rows)
      : el("p", { class: "empty" }, "No transcripts."),
  );
}

async function transcriptView(id) {
  const t = await api(`/api/jobs/${ref(id)}`);
  const latest = t.versions[t.versions.length - 1];
  const text = el("pre", { class: "transcript-text", id: "transcript-text" }, t.textUri ? "loading…" : "No transcript yet.");
  const files = (version) => [
    downloadButton(t.id, version.transcript.textUri, 1, "transcript.txt", version.version), " ",
    downloadButton(t.id, version.transcript.jsonUri, 1, "transcript.json", version.version)];
  const earlier = t.versions.slice(0, -1).reverse().map((v) => el("li", { "data-version": v.version },
    `v${v.version} (${when(v.createdAt)}): ${v.transcript.wordCount} words `, ...files(v)));
  main.replaceChildren(
    el("h1", {}, `Transcript ${t.namespace}/${t.name}`),
    el("dl", { class: "facts" },
      el("dt", {}, "status"), el("dd", {}, badge(t.status), runBadge(t.latestRun)),
      el("dt", {}, "version"), el("dd", {}, latest ? `v${latest.version} of ${t.versions.length}` : "-"),
      el("dt", {}, "length"), el("dd", {}, `${t.wordCount} words, ${Math.round(t.durationSeconds)} s, ${t.speakers} speaker(s)`),
      el("dt", {}, "source"), el("dd", {}, t.sourceUrl || "-"),
      el("dt", {}, "files"), el("dd", {}, latest ? files(latest) : "-")),
    el("h2", {}, "Text"), text,
    earlier.length ? el("h2", {}, "Earlier versions") : null,
    earlier.length ? el("ul", { id: "earlier-versions" }, earlier) : null);
  if (latest) {
    const response = await fetch(contentUrl(t.id, latest.transcript.textUri, 1, false, latest.version), { credentials: "same-origin" });
    text.textContent = response.ok ? await response.text() : `Could not load the text (${response.status}).`;
  }
}

function follow(id, onStatus) {
  const source = new EventSource(`/api/stream/job/${ref(id)}`);
  streams.add(source);
  source.addEventListener("status", (event) => onStatus(JSON.parse(event.data)));
  source.addEventListener("end", () => { source.close(); streams.delete(source); });
  source.addEventListener("error", () => { if (source.readyState === EventSource.CLOSED) streams.delete(source); });
}

// What a Jobs row shows of a record: its status, versions and latest run, live.
function jobRow(job) {
  const run = job.latestRun;
  const bar = progressBar(run.progress);
  const row = el("tr", { "data-id": job.id });
  const cells = {
    status: el("td", { class: "status" }),
    run: el("td", { class: "run" }),
    stage: el("td", { class: "stage" }),
    versions: el("td", { class: "versions" }),
  };
  row.append(
    el("td", {}, el("a", { href: `#/job/${ref(job.id)}` }, `${job.namespace}/${job.name}`)),
    el("td", {}, job.type), cells.status, cells.run, el("td", {}, bar), cells.stage, cells.versions, el("td", {}, when(job.createdAt)));
  row.update = (state) => {
    cells.status.replaceChildren(badge(state.status));
    cells.run.replaceChildren(runBadge(state.latestRun));
    setProgress(bar, state.latestRun.progress);
    cells.stage.textContent = state.latestRun.stage || "";
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
  return true;
}

async function jobs() {
  // One stream for the whole list, opened before the list is read, so no change falls in between.
  const values = filterValues();
  const rows = new Map();
  const early = [];
  let table = null;
  const source = new EventSource(`/api/stream/jobs${values.type ? `?type=${encodeURIComponent(values.type)}` : ""}`);
  streams.add(source);
  const apply = (state) => {
    const row = rows.get(state.id);
    if (row) {
      row.update(state);
    } else if (matches(state, values) && !values.until) { // a new record: created now
      const added = jobRow(state);
      rows.set(state.id, added);
      if (!table) return;
      table.querySelector("tr").after(added); // the newest first, under the header
      document.getElementById("no-jobs")?.remove();
    }
  };
  source.addEventListener("job", (event) => {
    const state = JSON.parse(event.data);
    if (table) apply(state); else early.push(state);
  });
  const page = await api("/api/jobs", { ...values, limit: 100 });
  for (const job of page.items) rows.set(job.id, jobRow(job));
  table = el("table", { id: "jobs" },
    el("tr", {}, ["name", "type", "status", "latest run", "progress", "stage", "versions", "created"].map((h) => el("th", {}, h))),
    [...rows.values()]);
  main.replaceChildren(
    el("h1", {}, "Jobs"),
    filterForm("jobs", ["type", "status", "run", "tag", "since", "until"]),
    table,
    rows.size ? null : el("p", { class: "empty", id: "no-jobs" }, "No jobs."),
  );
  for (const state of early.splice(0)) apply(state);
}

async function jobView(id) {
  const job = await api(`/api/jobs/${ref(id)}`);
  const run = job.latestRun;
  const bar = progressBar(run.progress, true);
  const percent = el("span", { id: "percent" }, `${run.progress} %`);
  const status = el("dd", { id: "job-status" }, badge(job.status));
  const phase = el("dd", { id: "job-run" }, runBadge(run), run.version ? ` version ${run.version}` : "");
  const stage = el("dd", { id: "job-stage" }, run.stage || "-");
  const message = el("dd", { id: "job-message" }, run.message || "-");
  const versions = el("dd", { id: "job-versions" }, job.versions.map((v) => `v${v.version}`).join(", ") || "-");
  const links = { LoraTraining: "lora", ImageGeneration: "image", Transcription: "transcript" };
  main.replaceChildren(
    el("h1", {}, `${job.kind} ${job.namespace}/${job.name}`),
    el("div", { id: "job-progress" }, bar, " ", percent),
    el("dl", { class: "facts" },
      el("dt", {}, "status"), status, el("dt", {}, "latest run"), phase, el("dt", {}, "stage"), stage,
      el("dt", {}, "message"), message, el("dt", {}, "versions"), versions,
      el("dt", {}, "outputs"), el("dd", {}, el("a", { href: `#/${links[job.kind]}/${ref(job.id)}` }, "view"))));
  if (run.phase === "Pending" || run.phase === "Running") {
    follow(job.id, (state) => {
      const latest = state.latestRun;
      setProgress(bar, latest.progress);
      percent.textContent = `${latest.progress} %`;
      status.replaceChildren(badge(state.status));
      phase.replaceChildren(runBadge(latest), latest.version ? ` version ${latest.version}` : "");
      stage.textContent = latest.stage || "-";
      message.textContent = latest.message || "-";
    });
  }
}

async function search() {
  const values = filterValues();
  document.getElementById("search-q").value = values.q || "";
  const page = await api("/api/assets/search", { ...values, limit: 100 });
  const links = { LoraTraining: "lora", ImageGeneration: "image", Transcription: "transcript" };
  const rows = page.items.map((item) => el("tr", { "data-id": item.id },
    el("td", {}, el("a", { href: `#/${links[item.kind]}/${ref(item.id)}` }, `${item.namespace}/${item.name}`)),
    el("td", {}, item.type), el("td", {}, badge(item.status)),
    el("td", {}, item.prompt || item.triggerWord || item.description || "")));
  main.replaceChildren(
    el("h1", {}, `Search: ${values.q || ""}`),
    filterForm("search", ["type", "status", "tag", "since", "until"]),
    rows.length ? el("table", { id: "results" }, rows) : el("p", { class: "empty" }, "Nothing matches."),
  );
  // Keep the words when the filters change.
  const form = document.getElementById("filters");
  form.append(el("input", { type: "hidden", name: "q", value: values.q || "" }));
}

// --- session and routing ----------------------------------------------------------------------

function showLogin() {
  session = null;
  for (const id of ["nav", "search", "who", "logout"]) document.getElementById(id).hidden = true;
  main.replaceChildren(document.getElementById("login-template").content.cloneNode(true));
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
      failed.textContent = response.status === 401 ? "Unknown token." : "The token is not valid (at least 16 characters).";
      return;
    }
    await start();
  });
}

const ROUTES = {
  gallery: () => gallery(),
  image: (id) => imageView(id),
  loras: () => loras(),
  lora: (id) => loraView(id),
  transcripts: () => transcripts(),
  transcript: (id) => transcriptView(id),
  jobs: () => jobs(),
  job: (id) => jobView(id),
  search: () => search(),
};

async function route() {
  for (const source of streams) source.close();
  streams.clear();
  if (!session) return;
  const path = (location.hash.replace(/^#\/?/, "").split("?")[0] || "gallery").split("/");
  const section = ROUTES[path[0]] ? path[0] : "gallery";
  for (const link of document.querySelectorAll("nav a")) link.classList.toggle("active", link.dataset.section === section);
  main.setAttribute("data-view", section);
  main.replaceChildren(el("p", { class: "empty" }, "loading…"));
  try {
    await ROUTES[section](decodeURIComponent(path.slice(1).join("/")));
    main.setAttribute("data-ready", section);
  } catch (error) {
    showError(error);
  }
}

async function start() {
  try {
    session = await api("/ui/session");
  } catch (error) {
    showLogin();
    return;
  }
  for (const id of ["nav", "search", "who", "logout"]) document.getElementById(id).hidden = false;
  document.getElementById("who").textContent = session.admin ? `${session.owner} (admin)` : session.owner;
  await route();
}

document.getElementById("search").addEventListener("submit", (event) => {
  event.preventDefault();
  const q = document.getElementById("search-q").value.trim();
  if (q) location.hash = `#/search?${new URLSearchParams({ q })}`;
});
document.getElementById("logout").addEventListener("click", async () => {
  await fetch("/ui/session", { method: "DELETE", credentials: "same-origin" });
  showLogin();
});
window.addEventListener("hashchange", route);
start();
