// The LoRAs view and a LoRA's page: its versions as tabs, Compare versions.

import { recordActions } from "./actions.js";
import { api, contentUrl, followJobs, ref, send, thumbOf, versionOf, withQuery } from "./api.js";
import { lossCurve, modelLine } from "./checkpoints.js";
import { copyButton, el, notice, put } from "./dom.js";
import { filterForm, filterValues, isFiltered, pager } from "./filters.js";
import { bytes, counted, num, usd, when } from "./format.js";
import { baseModels, baseOf, isVideo } from "./basemodels.js";
import { IMAGES, LORAS, VIDEOS } from "./kinds.js";
import { openLightbox } from "./lightbox.js";
import { LIKENESS_ROWS, likenessGrid, verdictBadge, verdictReasons } from "./likeness.js";
import { continueTraining, liveTraining, trainingFacts } from "./live.js";
import {
  badge,
  createOffTitle,
  creates,
  downloadButton,
  emptyState,
  ownerPrefix,
  runBadge,
  runFacts,
  waits,
} from "./parts.js";
import { likenessSection } from "./report.js";
import { usagePanel } from "./sharing.js";
import { created, main, PAGE, session, timers } from "./state.js";
import { videoLikeness } from "./video.js";

export async function loras() {
  const values = filterValues();
  const page = await api("/api/assets/loras", { ...values, limit: PAGE.list });
  const cards = page.items.map((lora) => {
    const latest = lora.versions[lora.versions.length - 1];
    return el("article", { class: "card lora-card", "data-id": lora.id },
      latest && latest.contactSheetThumbnailUri
        ? el("a", { href: `#/lora/${ref(lora.id)}` }, el("img", { class: "thumb", src: contentUrl(lora.id, latest.contactSheetThumbnailUri, 2, false, latest.version), alt: "contact sheet" }))
        : null,
      el("a", { href: `#/lora/${ref(lora.id)}` }, el("div", { class: "title" }, `${lora.namespace}/${lora.name}`)),
      el("div", { class: "meta" }, `${ownerPrefix(lora)}trigger word ${lora.triggerWord} · ${counted(lora.versions.length, "version")}`),
      latest ? verdictReasons(latest.likeness, `likeness of v${latest.version}`) : null,
      el("div", {}, badge(lora.status), runBadge(lora.latestRun)), waits(lora.latestRun));
  });
  put(main, 
    el("h1", {}, "LoRAs"),
    filterForm("loras", ["status", "tag", "since", "until"]),
    cards.length ? el("div", { class: "grid", id: "loras" }, cards) : emptyState("LoRAs", LORAS, isFiltered(values)),
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

// A clip made with a LoRA version: its poster, prompt and likeness over time (the video's page has
// the rest).
function clipCard(run, clip) {
  const parts = clip.posterUri.includes("/thumbs/") ? 2 : 1;
  return el("article", { class: "card made-with clip-made", "data-id": run.id, "data-version": clip.version },
    el("a", { href: `#/video/${ref(run.id)}?version=${clip.version}`, "aria-label": `${run.namespace}/${run.name} version ${clip.version}` },
      clip.posterUri ? el("img", { class: "thumb", src: contentUrl(run.id, clip.posterUri, parts, false, clip.version), alt: run.prompt, width: 240 }) : null,
      el("div", { class: "title" }, run.prompt)),
    el("div", { class: "meta" }, `${run.namespace}/${run.name} v${clip.version} · ${run.model}`),
    videoLikeness(clip.likeness) || el("p", { class: "meta" }, "its likeness was not measured"));
}

// Where a version is used, on its page: the images made with a picture LoRA, the clips (each with
// its likeness over time) made with a video LoRA, and the link that makes the next.
function madeWith(lora, v, use) {
  const n = v.version;
  const made = use.video
    ? (v.clips || []).flatMap((run) => run.clips.map((clip) => clipCard(run, clip)))
    : v.images.map(imageRunCard);
  const make = creates() && use.link ? el("a", { id: `make-with-v${n}`, href: use.link({ loraVersion: n }) }, use.video ? `Make a clip with version ${n}` : `Generate with version ${n}`) : "";
  return [
    el("h2", {}, use.video ? `Clips made with version ${n}` : `Images made with version ${n}`),
    made.length ? el("div", { class: "grid made-with-grid", id: `made-with-v${n}` }, made, make ? el("p", {}, make) : null)
      : el("p", { class: "empty", id: `made-with-v${n}` }, "None yet. ", make),
  ];
}

// What the LoRA can be used for, from its newest version's base model: pictures (an ImageGeneration)
// or clips (a VideoGeneration of a model that loads it), never the other.
function usesOf(lora, bases) {
  const latest = lora.versions[lora.versions.length - 1];
  const base = bases.length ? baseOf(bases, (latest && latest.baseModel) || "") : null;
  const video = isVideo(bases, latest);
  const trigger = lora.triggerWord;
  if (!video) {
    return { video, base, kind: IMAGES, words: `an ImageGeneration's loras: [{loraRef: {name: ${lora.name}}}]`,
      link: (more = {}) => `#/create/${IMAGES.link}?${new URLSearchParams({ lora: lora.name, prompt: `a photo of ${trigger}`, ...more })}` };
  }
  const model = base.loadsOn[0];
  return { video, base, kind: VIDEOS, words: `a VideoGeneration's loras: [{loraRef: {name: ${lora.name}}}] (model ${base.loadsOn.join(" or ") || "none here: take its files to ComfyUI"})`,
    link: model ? (more = {}) => `#/create/${VIDEOS.link}?${new URLSearchParams({ lora: lora.name, model, prompt: `a video of ${trigger} turning to the camera`, ...more })}` : null };
}

function loraVersionPanel(lora, v, use) {
  const model = modelLine(v);
  const loss = lossCurve(v);
  const base = use.base && v.baseModel !== undefined ? ` (${use.base.title})` : "";
  const clips = v.dataset && v.dataset.clips && v.dataset.clips.kept ? ` and ${counted(v.dataset.clips.kept, "clip")}` : "";
  return el("section", { class: "version", "data-version": v.version, role: "tabpanel", id: `panel-v${v.version}` },
    el("h2", {}, `Version ${v.version} `, verdictBadge(v.likeness)),
    el("dl", { class: "facts" },
      el("dt", {}, "created"), el("dd", {}, when(v.createdAt)),
      el("dt", {}, "trained"), el("dd", {}, `${v.steps} steps of ${v.trainingModel || "-"}${base} on ${v.frames} images${clips} (${v.provider}${v.placeholder ? ", placeholders" : ""})`),
      model ? [el("dt", {}, "model"), el("dd", { id: `model-v${v.version}` }, model)] : [],
      el("dt", {}, "cost"), el("dd", {}, usd(v.costUsd)),
      trainingFacts(v),
      el("dt", {}, "dataset"), el("dd", {}, v.datasetUri || "-"),
      el("dt", {}, "source video"), el("dd", { class: "source" }, v.sourceUrl || "-"),
      el("dt", {}, "weights"), el("dd", {}, `${bytes(v.sizeBytes)} `, downloadButton(lora.id, v.modelUri, 2, "Download model", v.version),
        " ", v.datasetUri ? downloadButton(lora.id, v.datasetUri, 2, "Download dataset", v.version) : null)),
    v.contactSheetUri
      ? el("a", { href: contentUrl(lora.id, v.contactSheetUri, 2, false, v.version) },
        el("img", { class: "contact-sheet", src: contentUrl(lora.id, v.contactSheetThumbnailUri || v.contactSheetUri, 2, false, v.version), alt: `contact sheet of version ${v.version}` }))
      : el("p", { class: "empty" }, "No contact sheet for this version."),
    continueTraining(lora, v),
    loss ? [el("h2", {}, "Training loss"), loss] : null,
    el("h2", {}, "Likeness"),
    likenessSection(lora, v, { drawn: !use.video, title: use.base ? use.base.title : "" }),
    madeWith(lora, v, use));
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
  const size = el("select", { name: "imageSize", id: "compare-size" }, IMAGES.choices("imageSize").map((s) => el("option", { value: s, selected: s === IMAGES.compareSize }, s)));
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
      notice(status, `Started ${counted(done.created.length, "image generation")}, tagged ${done.tag}.`);
      await renderComparisons(lora, box);
    } catch (error) {
      notice(status, error.message, true);
    }
  });
  return form;
}

export async function loraView(id) {
  const [lora, lineage, bases] = await Promise.all([api(`/api/jobs/${ref(id)}`), api(`/api/assets/${ref(id)}/lineage`), baseModels().catch(() => [])]);
  const use = usesOf(lora, bases);
  const values = filterValues();
  const status = el("div", { id: "action-status" });
  // Lineage's versions carry the images made with each; the record's, what readers get of each
  // (the newest evaluation's report, the history, a person's choice of model).
  const byNumber = new Map(lora.versions.map((v) => [v.version, v]));
  const versions = lineage.versions.map((v) => ({ ...v, ...(byNumber.get(v.version) || {}), images: v.images, clips: v.clips }));
  const newestFirst = versions.slice().reverse();
  const panels = newestFirst.map((v) => loraVersionPanel(lora, v, use));
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
    use.video
      ? el("p", { class: "meta", id: "compare-clips" }, `A comparison draws pictures with FLUX, which a ${use.base.title} LoRA does not load: compare its versions by making a clip with each (Make a clip with version N, on its tab).`)
      : [el("p", { class: "meta" }, "The same prompt and seed with each version, made as one ImageGeneration per version (loraRef pinned to it)."),
        lora.versions.length ? compareForm(lora, comparisons, picked) : el("p", { class: "empty" }, "No usable version yet."),
        comparisons]);
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
      use.base ? [el("dt", {}, "made for"), el("dd", { id: "made-for" }, `${use.base.title}: ${use.base.makes}`)] : [],
      el("dt", {}, use.video ? "clips made with it" : "images made with it"), el("dd", {}, String(use.video ? lineage.clipsTotal : lineage.imagesTotal)),
      el("dt", {}, "use it"), el("dd", { id: "use-it" }, el("code", {}, use.words),
        creates() && lora.versions.length && use.link ? [" — ", el("a", { id: "use-it-link", href: use.link() }, use.video ? "Make a clip with it" : "Generate with it")] : ""),
      el("dt", {}, "id"), el("dd", {}, el("code", {}, lora.id))),
    recordActions(lora, lora.latestVersion, status), status,
    liveTraining(lora),
    tabList, ...panels, comparePanel, usagePanel(lora),
  );
  if (selected === "compare" && !use.video) {
    // Follow the comparisons' runs: one stream for the image generations, redrawn on their
    // changes; started before the first drawing, so no change falls in between.
    let queued = null;
    await followJobs(withQuery("/api/stream/jobs", { type: IMAGES.type }), (state) => {
      if (!(state.tags || []).includes(`compare-of-${lora.name}`.slice(0, 64)) || queued) return;
      queued = setTimeout(() => { queued = null; renderComparisons(lora, comparisons).catch(() => {}); }, 200);
      timers.add(queued);
    });
    await renderComparisons(lora, comparisons);
  }
}
