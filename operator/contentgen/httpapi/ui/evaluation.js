// A LoraEvaluation's page: its score, its grid and its LoRA version.

import { recordActions } from "./actions.js";
import { api, follow, ref } from "./api.js";
import { el, put } from "./dom.js";
import { filterValues } from "./filters.js";
import { usd, when } from "./format.js";
import { jobView } from "./jobs.js";
import { EVALUATIONS } from "./kinds.js";
import { openLightbox } from "./lightbox.js";
import { gridItem, LIKENESS_ROWS, likenessScale, verdictBadge, verdictLine, verdictReasons } from "./likeness.js";
import { badge, runBadge, waits } from "./parts.js";
import { route } from "./router.js";
import { main, session } from "./state.js";

// A LoraEvaluation's page: the LoRA version it evaluated, its score (the verdict, the median on its
// scale with both ends named, the reasons, every number), its grid and its cost. Its files are its
// LoRA version's, so its grid comes through the LoRA's content route.
export async function evaluationView(id) {
  const job = await api(`/api/jobs/${ref(id)}`);
  if (job.kind !== EVALUATIONS.kind) {
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
    el("h1", {}, `${job.kind} ${job.namespace}/${job.name}`),
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
