// A LoRA version's evaluations: their history, Evaluate again, Score your own pictures.

import { closeDialog, confirmDialog } from "./actions.js";
import { failure, ref, send } from "./api.js";
import { el, notice, put } from "./dom.js";
import { counted, num, usd, when } from "./format.js";
import { openLightbox } from "./lightbox.js";
import { gridItem, verdictBadge, verdictReasons } from "./likeness.js";
import { createOffTitle, creates } from "./parts.js";
import { showVersion } from "./router.js";
import { config, created } from "./state.js";

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

// Whether an evaluation can be the version's verdict (catalog/verdicts.choosable): one of pictures the
// LoRA generated that measured something.
function choosable(e) {
  return e.source !== "pictures" && e.likeness && ["good", "poor"].includes(e.likeness.verdict);
}

// "Make it the verdict": a dialog saying what it changes and keeps, with a note; then the choice
// (POST .../verdict: a laptop records it, a cluster's API annotates the LoraTraining and says so).
function chooseVerdict(lora, v, e, status) {
  const n = v.version;
  const measured = (l) => `${l.verdict}${l.median == null ? "" : `, median ${num(l.median)}`}`;
  const now = v.likenessEvaluation ? `e${v.likenessEvaluation}` : "its run's own";
  confirmDialog({
    id: "verdict-dialog",
    title: `Make evaluation e${e.evaluation} the verdict of version ${n}?`,
    said: [
      `e${e.evaluation} (${measured(e.likeness)}) in place of ${now} (${v.likeness ? measured(v.likeness) : "none"}): the LoRA's badge, lists and this page show it from then on.`,
      "Free: nothing is generated. Every evaluation stays in the history; choosing e0 goes back to its run's own.",
    ],
    confirm: `Make e${e.evaluation} the verdict`,
    note: true,
    act: async (note) => {
      let answer;
      try {
        answer = await send("POST", `/api/assets/${ref(lora.id)}/versions/${n}/verdict`, { evaluation: e.evaluation, note });
      } catch (error) {
        closeDialog();
        notice(status, error.message, true).dataset.code = error.code || "";
        return;
      }
      closeDialog();
      if (answer && answer.annotation) { // in a cluster: the operator follows the annotation
        notice(status, answer.message, false);
        return;
      }
      await showVersion(lora.id, n);
    },
  });
}

export function evaluationHistory(lora, v) {
  const n = v.version;
  const entries = evaluationsOf(v);
  if (!entries.length) return el("p", { class: "empty", id: `evaluations-v${n}` }, "Not evaluated yet.");
  const gridded = entries.filter((e) => e.likeness && e.likeness.gridUri);
  const items = gridded.map((e) => gridItem(lora.id, n, e.likeness.gridUri, `Version ${n}, evaluation e${e.evaluation}`, () => [verdictReasons(e.likeness)]));
  const status = el("div", { class: "verdict-status", id: `verdict-status-v${n}` });
  const verdictCell = (e) => {
    if (e.current) return el("span", { class: "meta" }, "the verdict");
    if (!choosable(e)) return el("span", { class: "meta" }, e.source === "pictures" ? "not the LoRA's pictures" : "measured nothing");
    return el("button", { type: "button", class: "choose-verdict", "data-evaluation": e.evaluation, disabled: !creates(), title: createOffTitle(),
      onclick: () => chooseVerdict(lora, v, e, status) }, "Make it the verdict");
  };
  const rows = entries.map((e) => el("tr", { "data-evaluation": e.evaluation, class: e.current ? "current" : undefined },
    el("td", { "data-label": "evaluation" }, `e${e.evaluation}`, e.current ? el("span", { class: "meta" }, " (shown above)") : null),
    el("td", { "data-label": "at" }, when(e.at)),
    el("td", { "data-label": "by" }, evaluatedBy(e)),
    el("td", { "data-label": "pictures" }, e.source === "pictures" ? `source: pictures (${(e.pictures || []).length || "?"} made elsewhere)` : (e.provider || "-")),
    el("td", { "data-label": "verdict" }, verdictBadge(e.likeness)),
    el("td", { "data-label": "median" }, num(e.likeness && e.likeness.median)),
    el("td", { "data-label": "cost" }, e.evaluation ? usd(e.costUsd) : "in its run's"),
    el("td", { "data-label": "grid" }, e.likeness && e.likeness.gridUri
      ? el("button", { type: "button", class: "open-grid", onclick: () => openLightbox(items, gridded.indexOf(e)) }, "grid") : "-"),
    el("td", { "data-label": "choose" }, verdictCell(e))));
  return [
    el("table", { class: "stack evaluations", id: `evaluations-v${n}` },
      el("tr", { class: "head" }, ["evaluation", "at", "by", "pictures", "verdict", "median", "cost", "grid", ""].map((h) => el("th", {}, h))), rows),
    v.olderEvaluations ? el("p", { class: "meta" }, `${counted(v.olderEvaluations, "older evaluation")} ${v.olderEvaluations === 1 ? "is" : "are"} in the store only.`) : null,
    status,
  ];
}

// "Evaluate again": first the estimate (a dry run), shown; then, confirmed, the evaluation.
export function evaluateAgain(lora, v) {
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
export function scorePictures(lora, v) {
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
