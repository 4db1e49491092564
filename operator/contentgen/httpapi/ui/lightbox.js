// The lightbox: one image large, everything about how it was made, keyboard navigation.

import { closeDialog, rerun, showManifest } from "./actions.js";
import { api, contentUrl, ref } from "./api.js";
import { copyButton, el, put } from "./dom.js";
import { usd, when } from "./format.js";
import { closeLightbox, listenWhileOpen } from "./overlay.js";
import { createOffTitle, creates, downloadButton } from "./parts.js";
import { session } from "./state.js";

// items: [{run, version, image, n}] (a generated image), or [{picture}] (a stored picture such as a
// likeness grid: {kind, src, alt, title, download, aside: () => nodes shown beside it}).
export function openLightbox(items, start) {
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
  listenWhileOpen((event) => {
    if (document.getElementById("manifest-dialog")) {
      if (event.key === "Escape") closeDialog();
      return;
    }
    if (["INPUT", "TEXTAREA", "SELECT"].includes(event.target.tagName)) return;
    if (event.key === "ArrowRight") { event.preventDefault(); go(1); }
    else if (event.key === "ArrowLeft") { event.preventDefault(); go(-1); }
    else if (event.key === "Escape") closeLightbox();
  });
  box.addEventListener("click", (event) => { if (event.target === box || event.target === stage) closeLightbox(); });
  render();
  document.body.append(box);
  box.focus();
}
