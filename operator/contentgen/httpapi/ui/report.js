// A LoRA version's likeness section on its page: the report (likeness.js), its checkpoints
// (checkpoints.js) and its evaluations (evaluations.js) together. A module of its own, as those
// import the report's parts from likeness.js.

import { checkpointList, checkpointsGrid, likenessCurve } from "./checkpoints.js";
import { el } from "./dom.js";
import { evaluateAgain, evaluationHistory, scorePictures } from "./evaluations.js";
import { LIKENESS_ROWS, likenessGrid, likenessScale, verdictBadge } from "./likeness.js";

// Which evaluation a version's report is: its training run's (e0), a re-evaluation, or a score
// of pictures made elsewhere.
function reportSource(v) {
  const number = v.likenessEvaluation || 0;
  if (!number) return "its training run's evaluation (e0)";
  return `evaluation e${number}${v.likenessSource === "pictures" ? ", a score of pictures made elsewhere" : ", evaluated again"}`;
}

// `use`: {drawn, title}: whether its likeness can be evaluated again by drawing pictures (a
// picture LoRA's; a video LoRA's title says why not).
export function likenessSection(lora, v, use = { drawn: true, title: "" }) {
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
    use.drawn ? evaluateAgain(lora, v) : el("p", { class: "meta", id: `evaluate-off-v${n}` },
      `Evaluate again draws pictures with FLUX, which a ${use.title} LoRA does not load, so it is not offered (nothing is estimated or billed): make a clip with it and read the clip's likeness over time below, or score pictures of the person made elsewhere.`),
    scorePictures(lora, v));
}
