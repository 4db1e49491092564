// Pieces every view shows: status badges, why a run waits, downloads, empty lists, record thumbnails.

import { contentUrl, thumbOf } from "./api.js";
import { copyButton, el } from "./dom.js";
import { usd } from "./format.js";
import { config, session } from "./state.js";

export function badge(status) {
  return el("span", { class: `badge status-${status}`, "data-status": status }, status);
}

// The latest run, apart from the record's status: "Running 42 % dataset", "Failed: InvalidInput".
export function runBadge(run) {
  const text = run.phase === "Failed" && run.error ? `run Failed: ${run.error.reason}` : `run ${run.phase}`;
  return el("span", { class: `badge run status-${run.phase}`, "data-run": run.phase }, text);
}

// Why a run waits (Pending) or failed: its reason and message, in words.
export function waits(run) {
  if (!run) return null;
  if (run.phase === "Pending" && (run.reason || run.message)) {
    return el("span", { class: "waits", "data-reason": run.reason || "" }, "waits: ", el("b", {}, run.reason || "Pending"),
      run.message ? ` — ${run.message}` : "");
  }
  // Failed or Interrupted (a laptop's Ctrl-C: where it was, what it keeps): its message (the run's
  // badge names the reason), where there is one to add.
  if (["Failed", "Interrupted"].includes(run.phase) && run.error && run.error.message && run.error.message !== run.error.reason) {
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

export function runFacts(run) {
  const why = waits(run);
  const message = run.message && !(why && why.textContent.includes(run.message)) ? ` ${run.message}` : "";
  return [runBadge(run), message, why, poolPlace(run)];
}

export function downloadButton(id, uri, parts, label, version) {
  return el("a", { class: "button download", href: contentUrl(id, uri, parts, true, version), download: "" }, label);
}

// What an image's or a video's page says of it first: its prompt, model, status, owner, tags and id.
export function generationFacts(run) {
  return el("dl", { class: "facts" },
    el("dt", {}, "prompt"), el("dd", {}, run.prompt, copyButton(run.prompt, "Copy", "copy-prompt")),
    el("dt", {}, "model"), el("dd", {}, run.model),
    el("dt", {}, "status"), el("dd", {}, badge(run.status), runFacts(run.latestRun)),
    session.admin ? [el("dt", {}, "owner"), el("dd", {}, run.owner)] : [],
    el("dt", {}, "tags"), el("dd", {}, (run.tags || []).join(", ") || "-"),
    el("dt", {}, "id"), el("dd", {}, el("code", {}, run.id)));
}

// What to do when a list is empty: the form that makes the first one, or the manifest to apply.
// `kind`: the kind the first is (the registry's entry).
export function emptyState(what, kind, filtered) {
  const { link, create: { example } } = kind;
  if (filtered) return el("p", { class: "empty", id: "empty" }, `No ${what} match these filters. `, el("a", { href: `#/${location.hash.slice(2).split("?")[0]}` }, "Clear the filters"));
  const make = config.create !== "off"
    ? [el("a", { class: "button primary", href: `#/create/${link}` }, `Make the first`), " or apply a manifest: "]
    : ["Make the first with a manifest: "];
  return el("div", { class: "empty", id: "empty" },
    el("p", {}, `No ${what} yet.`),
    el("p", {}, ...make, el("code", {}, `kubectl apply -f examples/${example}`),
      config.create === "local" ? [" (on this laptop: ", el("code", {}, `contentgen run examples/${example}`), ")"] : ""));
}

export function ownerPrefix(record) {
  return session && session.admin ? `${record.owner} · ` : "";
}

export function creates() {
  return config.create !== "off";
}

export function createOffTitle() {
  return creates() ? undefined : "This API does not create: apply a manifest with kubectl (Copy as manifest)";
}

// ?version=N (a gallery card of an older version): that version's section, marked and in view.
export function showAsked(version) {
  const section = version && document.getElementById(`version-${version}`);
  if (!section) return;
  section.classList.add("asked");
  section.scrollIntoView({ block: "start" });
}

export function costOf(job) {
  return job.cost ? usd(job.cost.actualUsd ?? job.cost.estimatedUsd) : "-";
}

// The first picture of what a record's latest version made, as a thumbnail (an image's, a video's
// still, a LoRA's contact sheet); null where it has none (a transcript, nothing made yet).
export function recordThumb(record) {
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
