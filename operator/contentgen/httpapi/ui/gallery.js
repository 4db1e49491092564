// The gallery view: every image and video, newest first.

import { api, ref, thumbOf } from "./api.js";
import { el, put } from "./dom.js";
import { filterForm, filterValues, isFiltered, pager } from "./filters.js";
import { IMAGES, VIDEOS } from "./kinds.js";
import { openLightbox } from "./lightbox.js";
import { badge, downloadButton, emptyState, ownerPrefix, runBadge, waits } from "./parts.js";
import { collectButton } from "./sharing.js";
import { main, PAGE } from "./state.js";
import { videoCard } from "./video.js";

export async function gallery() {
  const values = filterValues();
  const { media, ...query } = values;
  const empty = { items: [], total: 0, offset: 0, limit: PAGE.gallery };
  const [page, videos] = await Promise.all([
    media === "videos" ? empty : api("/api/assets/images", { ...query, limit: PAGE.gallery }),
    media === "images" ? empty : api("/api/jobs", { ...query, type: VIDEOS.type, limit: PAGE.gallery }),
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
    cards.length ? el("div", { class: "grid", id: "gallery" }, cards) : emptyState("images", IMAGES, isFiltered(values)),
    pager("gallery", values.media === "videos" ? videos : page),
  );
}
