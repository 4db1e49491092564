// A LoRA version's checkpoints: the likeness and loss curves, the checkpoint list and grid, choosing its model.

import { closeDialog } from "./actions.js";
import { contentUrl, ref, send } from "./api.js";
import { el, notice, svg } from "./dom.js";
import { num, when } from "./format.js";
import { openLightbox } from "./lightbox.js";
import { clipsSaid, gridItem, verdictBadge, verdictReasons } from "./likeness.js";
import { createOffTitle, creates } from "./parts.js";
import { showVersion } from "./router.js";

// The step whose LoRA is the version's model: a person's choice (promotion), else the automatic one.
function modelStep(v, curve) {
  if (v.promotion) return v.promotion.step;
  const chosen = (curve.checkpoints || []).find((p) => p.chosen);
  return curve.chosenStep ?? v.chosenStep ?? (chosen ? chosen.step : undefined);
}

// Who chose the version's model: "step 500, chosen by alice at ... (automatic choice: step 750)".
export function modelLine(v) {
  const p = v.promotion;
  if (p) {
    return `step ${p.step}, chosen by ${p.by || "someone"} at ${when(p.at)}` +
      (p.automaticStep === null || p.automaticStep === undefined ? "" : ` (automatic choice: step ${p.automaticStep})`) + (p.note ? ` — “${p.note}”` : "");
  }
  return v.chosenStep === null || v.chosenStep === undefined ? null : `step ${v.chosenStep}, the automatic choice`;
}

// Each scored checkpoint with its verdict and grid, and "Use this checkpoint": make its LoRA the
// version's model (POST .../promote; the automatic choice is kept).
export function checkpointList(lora, v) {
  const curve = curveOf(v);
  if (!curve) return null;
  const n = v.version;
  const model = modelStep(v, curve);
  const status = el("div", { class: "promote-status", id: `promote-status-v${n}` });
  const items = curve.checkpoints.filter((p) => p.gridUri).map((p) =>
    gridItem(lora.id, n, p.gridUri, `Version ${n}, checkpoint step ${p.step}`, () => [verdictReasons(p), likenessCurve(lora, v)]));
  const rows = curve.checkpoints.map((p) => {
    const at = curve.checkpoints.filter((c) => c.gridUri).indexOf(p);
    const automatic = Boolean(v.promotion) && p.chosen && p.step !== model;
    return el("tr", { "data-step": p.step, class: p.step === model ? "model" : undefined },
      el("td", { "data-label": "checkpoint" }, `step ${p.step}`, p.step === model ? el("b", {}, " · the model") : null, automatic ? " · the automatic choice" : ""),
      el("td", { "data-label": "likeness" }, verdictBadge(p)),
      el("td", { "data-label": "grid" }, p.gridUri
        ? el("a", { href: contentUrl(lora.id, p.gridUri, 2, false, n), class: "open-grid", onclick: (event) => { event.preventDefault(); openLightbox(items, at); } }, "grid")
        : "-"),
      el("td", {}, p.step === model ? el("span", { class: "meta" }, "in use") : el("button", {
        type: "button", class: "promote", "data-step": p.step, disabled: !creates(), title: createOffTitle(),
        onclick: () => promoteStep(lora, v, p.step, status) }, "Use this checkpoint")));
  });
  return el("div", { class: "checkpoint-list" },
    el("table", { class: "stack checkpoints", id: `checkpoints-v${n}` },
      el("tr", { class: "head" }, ["checkpoint", "likeness", "grid", ""].map((h) => el("th", {}, h))), rows),
    creates() ? null : el("p", { class: "meta why-off" }, "Choosing a checkpoint is off: this API does not create (CONTENTGEN_API_CREATE=off)."),
    status);
}

// "Use this checkpoint": a dialog saying what it does, with a note kept beside the promotion (as
// the CLI's --note), then the promotion.
function promoteStep(lora, v, step, status) {
  closeDialog();
  const point = (curveOf(v)?.checkpoints || []).find((p) => p.step === step) || {};
  const note = el("textarea", { id: "promote-note", name: "note", rows: 3, maxlength: 500, placeholder: "why this checkpoint (optional)" });
  const title = el("h2", { id: "promote-title" }, `Use checkpoint step ${step} as version ${v.version}'s model?`);
  const confirm = el("button", { type: "submit", class: "primary", id: "promote-confirm" }, `Use step ${step}`);
  const form = el("form", { id: "promote-form", onsubmit: (event) => {
    event.preventDefault();
    confirm.disabled = true;
    promoted(lora, v, step, note.value.trim(), status);
  } },
    title,
    el("p", { class: "meta", id: "promote-what" }, `Its likeness: ${point.verdict || "-"}${point.median == null ? ", nothing measured" : `, median ${num(point.median)}`}. `,
      "A loraRef to the version uses this checkpoint's LoRA from then on; the automatic choice is kept, and choosing its step again goes back."),
    el("label", { for: "promote-note" }, "Note"), note,
    el("div", { class: "actions" }, confirm, el("button", { type: "button", id: "promote-cancel", onclick: closeDialog }, "Cancel")));
  const dialog = el("div", { class: "dialog", id: "promote-dialog", role: "dialog", "aria-modal": "true", "aria-labelledby": "promote-title" }, el("div", {}, form));
  dialog.addEventListener("click", (event) => { if (event.target === dialog) closeDialog(); });
  dialog.addEventListener("keydown", (event) => { if (event.key === "Escape") closeDialog(); });
  document.body.append(dialog);
  note.focus();
}

async function promoted(lora, v, step, note, status) {
  let answer;
  try {
    answer = await send("POST", `/api/assets/${ref(lora.id)}/versions/${v.version}/promote`, { step, note });
  } catch (error) {
    closeDialog();
    notice(status, error.message, true).dataset.code = error.code || "";
    return;
  }
  closeDialog();
  // In a cluster (202) the LoraTraining is annotated and the operator follows: say so, the record
  // shows it once the operator has.
  if (answer && answer.annotation) {
    notice(status, answer.message, false);
    return;
  }
  await showVersion(lora.id, v.version);
}

// The seed × checkpoint grid (likeness-checkpoints.jpg): opens large in the lightbox, beside the curve.
export function checkpointsGrid(lora, v) {
  const curve = curveOf(v);
  const uri = (curve && curve.checkpointsGridUri) || (v.likeness && v.likeness.checkpointsGridUri);
  if (!uri) return null;
  const n = v.version;
  const src = contentUrl(lora.id, uri, 2, false, n);
  const item = { picture: { kind: "checkpoints", src, download: contentUrl(lora.id, uri, 2, true, n), title: `Version ${n}: the checkpoints side by side`,
    aside: () => [el("p", { class: "meta" }, `A row per checkpoint (its step, verdict and median; * the automatic choice) under a row without the LoRA; a column per prompt and seed, each picture's similarity under it${clipsSaid(curve)}.`),
      likenessCurve(lora, v), v.promotion ? el("p", { class: "meta" }, `The model: ${modelLine(v)}.`) : null] } };
  return el("figure", { class: "checkpoints-grid", id: `checkpoints-grid-v${n}` },
    el("a", { href: src, onclick: (event) => { event.preventDefault(); openLightbox([item], 0); } },
      el("img", { class: "checkpoints-grid", src, alt: `the checkpoints of version ${n} side by side` })),
    el("figcaption", { class: "meta" }, `Seed × checkpoint: each checkpoint's ${curve && curve.clipFrames ? "clips" : "pictures"} of the same prompts and seeds, a row each${clipsSaid(curve)}. Click to open it large beside the curve.`));
}

// The report with the version's checkpoints' curve: the newest evaluation's, or its run's own
// where a re-evaluation (of the model alone) came after it.
function curveOf(v) {
  const reports = [v.likeness, ...(v.likenessHistory || []).map((h) => h.likeness)];
  return reports.find((r) => r && (r.checkpoints || []).length) || null;
}

// The likeness of each checkpoint the version's training stored (docs/likeness.md#checkpoints):
// the median similarity per step as a line over the threshold (dashed), the version's model ringed,
// each point a link to its checkpoint's grid. A checkpoint whose pictures showed no face has no
// median: a gap, never a zero: no point on the scale, the line broken there, a dashed mark across
// the plot at its step and "no median" under the step.
export function likenessCurve(lora, v) {
  const curve = curveOf(v);
  if (!curve) return null;
  const points = curve.checkpoints;
  const [width, height, left, right, top, bottom] = [480, 212, 44, 16, 12, 46];
  const first = points[0].step, last = points[points.length - 1].step;
  const x = (step) => left + (last > first ? (step - first) / (last - first) : 0.5) * (width - left - right);
  const y = (value) => top + (1 - Math.max(0, Math.min(1, value))) * (height - top - bottom);
  const edge = (step) => (last > first && step === last ? "end" : last > first && step === first ? "start" : "middle");
  const threshold = curve.threshold ?? v.likeness?.threshold;
  const model = modelStep(v, curve);
  const label = `likeness per checkpoint of version ${v.version}: ` + points.map((p) => `step ${p.step} ${p.verdict}${p.median == null ? "" : ` ${num(p.median)}`}`).join(", ");
  return el("figure", { class: "likeness-curve" },
    svg("svg", { class: "likeness-curve", "data-version": v.version, viewBox: `0 0 ${width} ${height}`, role: points.some((p) => p.gridUri) ? "group" : "img", "aria-label": label },
      svg("line", { class: "axis", x1: left, y1: y(0), x2: width - right, y2: y(0) }),
      svg("line", { class: "axis", x1: left, y1: y(0), x2: left, y2: y(1) }),
      [0, 0.5, 1].map((value) => svg("text", { class: "tick", x: left - 6, y: y(value) + 4, "text-anchor": "end" }, value.toFixed(1))),
      threshold == null ? null : [
        svg("line", { class: "threshold", x1: left, y1: y(threshold), x2: width - right, y2: y(threshold), "data-value": threshold }),
        svg("text", { class: "tick", x: width - right, y: y(threshold) - 4, "text-anchor": "end" }, `threshold ${num(threshold)}`),
      ],
      runs(points).filter((run) => run.length > 1).map((run) => svg("polyline", { class: "median", points: run.map((p) => `${x(p.step)},${y(p.median)}`).join(" ") })),
      points.map((p) => {
        const measuredPoint = p.median !== null && p.median !== undefined;
        const isModel = p.step === model;
        const automatic = Boolean(v.promotion) && p.chosen && !isModel; // a person chose another
        const title = `step ${p.step}: ${p.verdict}${measuredPoint ? `, median ${num(p.median)}` : ", nothing measured (no median)"}${isModel ? " (the version's model)" : ""}${automatic ? " (the automatic choice)" : ""}`;
        const classes = `${isModel ? " chosen" : ""}${automatic ? " automatic" : ""}`;
        const mark = measuredPoint
          ? svg("circle", { class: `point${classes}`, cx: x(p.step), cy: y(p.median), r: isModel ? 7 : 4.5, "data-step": p.step, "data-verdict": p.verdict }, svg("title", {}, title))
          : svg("line", { class: `point gap${classes}`, x1: x(p.step), y1: y(1), x2: x(p.step), y2: y(0), "data-step": p.step, "data-verdict": p.verdict }, svg("title", {}, title));
        const text = [svg("text", { class: "tick", x: x(p.step), y: height - bottom + 16, "text-anchor": "middle" }, p.step),
          measuredPoint ? null : svg("text", { class: "tick gap-label", x: x(p.step), y: height - bottom + 30, "text-anchor": edge(p.step) }, "no median")];
        return p.gridUri ? svg("a", { href: contentUrl(lora.id, p.gridUri, 2, false, v.version), "data-step": p.step }, mark, text) : [mark, text];
      })),
    el("figcaption", { class: "meta" }, curve.choice || "", v.promotion ? ` Then a person chose: ${modelLine(v)}.` : ""));
}

// The measured points in runs of neighbours: the curve's line is broken where a checkpoint has no median.
function runs(points) {
  const out = [[]];
  for (const p of points) {
    if (p.median === null || p.median === undefined) out.push([]);
    else out[out.length - 1].push(p);
  }
  return out;
}

// The training loss per step (the cluster's trainer records it, trainingLoss): a line over the
// steps, the loss axis from its lowest value to its highest, the scored checkpoints' steps dashed.
export function lossCurve(v) {
  const points = (v.trainingLoss || []).filter((p) => p && Number.isFinite(Number(p.step)) && Number.isFinite(Number(p.loss)))
    .map((p) => ({ step: Number(p.step), loss: Number(p.loss) })).sort((a, b) => a.step - b.step);
  if (!points.length) return null;
  const [width, height, left, right, top, bottom] = [480, 180, 52, 16, 12, 34];
  let low = points[0], high = points[0];
  for (const p of points) {
    if (p.loss < low.loss) low = p;
    if (p.loss > high.loss) high = p;
  }
  const span = high.loss - low.loss || Math.abs(high.loss) || 1;
  const bottomLoss = high.loss - low.loss ? low.loss : low.loss - span / 2;
  const first = points[0].step, last = points[points.length - 1].step;
  const x = (step) => left + (last > first ? (step - first) / (last - first) : 0.5) * (width - left - right);
  const y = (loss) => top + (1 - (loss - bottomLoss) / span) * (height - top - bottom);
  const fixed = (value) => Number(value).toFixed(Math.abs(value) >= 10 ? 1 : 3);
  const curve = curveOf(v);
  const steps = curve ? curve.checkpoints.map((p) => p.step).filter((s) => s >= first && s <= last) : [];
  const model = curve ? modelStep(v, curve) : undefined;
  const label = `training loss of version ${v.version}: ${points.length} points, ${fixed(points[0].loss)} at step ${first} to ${fixed(points[points.length - 1].loss)} at step ${last}`;
  return el("figure", { class: "loss-curve", id: `loss-v${v.version}` },
    svg("svg", { class: "loss-curve", "data-version": v.version, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label },
      svg("line", { class: "axis", x1: left, y1: height - bottom, x2: width - right, y2: height - bottom }),
      svg("line", { class: "axis", x1: left, y1: height - bottom, x2: left, y2: top }),
      [bottomLoss, bottomLoss + span / 2, bottomLoss + span].map((value) => svg("text", { class: "tick", x: left - 6, y: y(value) + 4, "text-anchor": "end" }, fixed(value))),
      steps.map((s) => svg("line", { class: `checkpoint${s === model ? " model" : ""}`, x1: x(s), y1: top, x2: x(s), y2: height - bottom, "data-step": s },
        svg("title", {}, `checkpoint step ${s}${s === model ? " (the version's model)" : ""}`))),
      points.length > 1
        ? svg("polyline", { class: "loss", points: points.map((p) => `${x(p.step).toFixed(1)},${y(p.loss).toFixed(1)}`).join(" ") })
        : svg("circle", { class: "loss", cx: x(first), cy: y(points[0].loss), r: 3 }),
      [first, last].filter((s, i) => i === 0 || s !== first).map((s) => svg("text", { class: "tick", x: x(s), y: height - bottom + 16, "text-anchor": "middle" }, s)),
      svg("text", { class: "tick", x: (left + width - right) / 2, y: height - 4, "text-anchor": "middle" }, "step")),
    el("figcaption", { class: "meta" }, `Training loss per step: ${fixed(points[0].loss)} at step ${first}, ${fixed(points[points.length - 1].loss)} at step ${last}, lowest ${fixed(low.loss)} at step ${low.step}`,
      steps.length ? "; the scored checkpoints dashed. The loss does not show overfitting: the likeness curve does." : "."));
}
