// An ImageGeneration's page: its versions' images and their lineage.

import { recordActions } from "./actions.js";
import { api, contentUrl, ref } from "./api.js";
import { el, put } from "./dom.js";
import { filterValues } from "./filters.js";
import { bytes, when } from "./format.js";
import { openLightbox } from "./lightbox.js";
import { downloadButton, generationFacts, showAsked } from "./parts.js";
import { usagePanel } from "./sharing.js";
import { main } from "./state.js";

// Which checkpoint of the LoRA version a run used, and who made it the version's model then:
// "step 500, promoted by alice (p1): “sharper eyes”", "step 750, the automatic choice".
function stepUsed(use) {
  if (use.step === null || use.step === undefined) return "";
  const p = use.promotion;
  if (!p) return `, step ${use.step}, the automatic choice`;
  return `, step ${use.step}, promoted by ${p.by || "someone"}${p.promotion ? ` (p${p.promotion})` : ""}${p.note ? `: “${p.note}”` : ""}`;
}

function lineageList(use) {
  const trained = use.trained || {};
  const name = use.name || (use.lora && use.lora.name) || "(by URL)";
  const used = use.usedBy || [];
  const versions = used.length ? `${used.length === 1 ? "version" : "versions"} ${used.join(", ")}` : "";
  return el("li", { class: "lora-use", "data-step": use.step ?? "" },
    use.found ? el("a", { href: `#/lora/${ref(use.uid)}` }, `LoRA ${name}`) : `LoRA ${name}`,
    ` v${use.version}${stepUsed(use)} (scale ${use.scale})`, versions ? ` · images of ${versions}` : "",
    el("ol", {},
      el("li", {}, "id ", el("code", {}, use.uid || "-")),
      use.trained ? el("li", {}, `dataset: ${trained.datasetUri || "-"} (${trained.frames} images)`) : null,
      use.trained ? el("li", { class: "source" }, `source video: ${trained.sourceUrl || "-"}`) : null,
      use.found ? null : el("li", {}, `weights: ${use.uri}`)));
}

export async function imageView(id) {
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
    generationFacts(run),
    recordActions(run, run.latestVersion, status), status,
    el("h2", {}, "Lineage"),
    el("div", { class: "lineage", id: "lineage" },
      lineage.loras.length ? el("ol", {}, lineage.loras.map(lineageList)) : el("p", { class: "empty" }, "Made without LoRAs.")),
    ...(versions.length ? versions : [el("p", { class: "empty" }, "No images yet. ", el("a", { href: `#/job/${ref(run.id)}` }, "Follow its run"))]),
    usagePanel(run),
  );
  showAsked(filterValues().version);
}
