// A VideoGeneration's page and its cards: the video, its frames, the likeness along it.

import { recordActions } from "./actions.js";
import { api, contentUrl, ref } from "./api.js";
import { el, put, svg } from "./dom.js";
import { filterValues } from "./filters.js";
import { bytes, clock, counted, num, when } from "./format.js";
import { verdictBadge } from "./likeness.js";
import { badge, downloadButton, generationFacts, ownerPrefix, showAsked } from "./parts.js";
import { collectButton, usagePanel } from "./sharing.js";
import { main } from "./state.js";

export function videoCard(run, version) {
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
export function videoLikeness(l) {
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
    samples.length ? svg("svg", { viewBox: "0 0 320 100", width: 320, height: 100, role: "img", "aria-label": `likeness of ${counted(samples.length, "sample")} over ${clock(end)}` },
      svg("title", {}, counted(samples.length, "sample")), threshold, line) : null,
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

export async function videoView(id) {
  const run = await api(`/api/jobs/${ref(id)}`);
  const status = el("div", { id: "action-status" });
  const versions = (run.versions || []).slice().reverse().map((version) => videoVersion(run, version));
  put(main,
    el("h1", {}, `${run.namespace}/${run.name}`),
    generationFacts(run),
    recordActions(run, run.latestVersion, status), status,
    ...(versions.length ? versions : [el("p", { class: "empty" }, "No video yet. ", el("a", { href: `#/job/${ref(run.id)}` }, "Follow its run"))]),
    usagePanel(run),
  );
  showAsked(filterValues().version);
}
