// A LoRA training as it goes, on its page (issue 67): its step, loss and time left, and each
// checkpoint's pictures and score as it is scored, followed over the record's event stream; Stop
// and keep the best; and, on a version's tab, Train on from it. Each asks the API first what it
// keeps or costs (a dry run) and acts only when that is confirmed.

import { closeDialog, confirmDialog } from "./actions.js";
import { contentUrl, follow, ref, send } from "./api.js";
import { likenessCurve, lossCurve } from "./checkpoints.js";
import { el, notice, progressBar, put } from "./dom.js";
import { usd, when } from "./format.js";
import { openLightbox } from "./lightbox.js";
import { clipsSaid, gridItem, verdictBadge, verdictReasons } from "./likeness.js";
import { createOffTitle, creates, runFacts } from "./parts.js";
import { route } from "./router.js";
import { created, timers } from "./state.js";

const UNDER_WAY = ["Pending", "Running"];

function duration(seconds) {
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

// "about 12 min left (at 14:32 UTC)": the worker's estimate as of its last report.
function timeLeft(training) {
  if (training.etaSeconds === null || training.etaSeconds === undefined) return "-";
  const from = training.updatedAt ? Date.parse(training.updatedAt) : Date.now();
  const at = new Date(from + training.etaSeconds * 1000).toISOString().replace(/\.\d+Z$/, "Z");
  return `about ${duration(training.etaSeconds)} (at ${when(at)})`;
}

// The training under way as a version the curves draw: its loss so far, its checkpoints scored so
// far (the best ringed), the threshold of the LoRA's reports.
function asVersion(lora, run, training) {
  const threshold = (lora.versions.map((v) => v.likeness && v.likeness.threshold).filter((t) => t != null)).pop();
  return { version: run.version, trainingLoss: training.loss || [], likeness: { checkpoints: training.checkpoints || [], threshold } };
}

// Each scored checkpoint as a card: its grid of pictures, its verdict and median; a click opens the
// grid large in the lightbox. `kept` holds the cards drawn before, by what each shows: a card whose
// checkpoint is unchanged is the same element, so a report of the next step does not load its
// picture again (nor make it flash), and only a newly scored checkpoint's picture arrives.
function checkpointCards(lora, run, training, kept) {
  const points = training.checkpoints || [];
  if (!points.length) return el("p", { class: "empty", id: "live-no-checkpoints" }, "No checkpoint scored yet: each appears here as it is scored.");
  // Each card shows its grid's top rows; a click opens it whole, among the grids scored by then.
  const gridded = points.filter((p) => p.gridUri);
  kept.items = gridded.map((p) => ({ step: p.step, ...gridItem(lora.id, run.version, p.gridUri, `Version ${run.version}, checkpoint step ${p.step}`, () => [verdictReasons(p)]) }));
  const drawn = new Map();
  const cards = points.map((p) => {
    const best = p.step === training.bestStep;
    const key = JSON.stringify([run.version, p, best]);
    const card = kept.cards.get(key) || checkpointCard(lora, run, p, best, kept);
    drawn.set(key, card);
    return card;
  });
  kept.cards = drawn;
  return el("div", { class: "checkpoint-cards", id: "live-checkpoints" }, cards);
}

function checkpointCard(lora, run, p, best, kept) {
  const open = (event) => {
    event.preventDefault();
    openLightbox(kept.items, kept.items.findIndex((item) => item.step === p.step));
  };
  const picture = p.gridUri
    ? el("a", { href: contentUrl(lora.id, p.gridUri, 2, false, run.version), onclick: open },
      el("img", { src: contentUrl(lora.id, p.gridUri, 2, false, run.version), alt: `${p.clipFrames ? "clips' frames" : "pictures"} of checkpoint step ${p.step}`, loading: "lazy" }))
    : null;
  return el("figure", { class: best ? "checkpoint-card best" : "checkpoint-card", "data-step": p.step, "data-verdict": p.verdict },
    picture,
    el("figcaption", {}, el("b", {}, `step ${p.step}`), " ", verdictBadge(p), best ? el("span", { class: "meta" }, " · the best so far") : null));
}

// A video LoRA's checkpoints are drawn as clips: say what each grid's pictures are.
function clipsNote(training) {
  const clip = (training.checkpoints || []).find((p) => p.clipFrames);
  return clip ? el("p", { class: "meta", id: "live-clips" }, `A video LoRA: each checkpoint's grid holds clips${clipsSaid(clip)}.`) : null;
}

// "Stop and keep the best": the API says first which checkpoint it keeps (POST .../stop), in a
// dialog; confirmed, the training stops at its next step (?confirm=true).
function stopControl(lora, training, status) {
  const asked = Boolean(training.stopAsked);
  const ask = async () => {
    let plan;
    try {
      plan = await send("POST", `/api/jobs/${ref(lora.id)}/stop`);
    } catch (error) {
      notice(status, error.message, true).dataset.code = error.code || "";
      return;
    }
    confirmDialog({
      id: "stop-dialog",
      title: `Stop the training of version ${plan.version} now?`,
      said: [`It ${plan.message}.`, "Deleting the LoRA instead cancels everything and keeps nothing of this run."],
      confirm: plan.keeps ? `Stop and keep step ${plan.keeps.step}` : "Stop, keeping nothing",
      act: async () => {
        try {
          const done = await send("POST", `/api/jobs/${ref(lora.id)}/stop?confirm=true`);
          notice(status, done.message, false).id = "stop-asked";
        } catch (error) {
          notice(status, error.message, true).dataset.code = error.code || "";
        }
        closeDialog();
      },
    });
  };
  return el("div", { class: "actions" },
    el("button", { type: "button", id: "stop-training", disabled: asked || !creates(), title: createOffTitle(), onclick: ask },
      asked ? "Stop asked" : "Stop and keep the best"),
    asked ? el("span", { class: "meta" }, " it stops at its next step, keeping its best checkpoint") : null);
}

function drawLive(box, lora, run, status, kept) {
  const training = run.training || {};
  const version = asVersion(lora, run, training);
  const loss = training.loss || [];
  put(box,
    el("h2", {}, `Training version ${run.version} now`),
    el("dl", { class: "facts" },
      el("dt", {}, "run"), el("dd", {}, runFacts(run)),
      el("dt", {}, "progress"), el("dd", {}, progressBar(run.progress || 0, false, `version ${run.version}: ${run.progress || 0} %`), ` ${run.progress || 0} % · ${run.stage || "-"}`),
      training.steps ? [
        el("dt", {}, "step"), el("dd", { id: "live-step" }, `${training.step} of ${training.steps}`, training.firstStep ? ` (going on after step ${training.firstStep})` : ""),
        el("dt", {}, "loss"), el("dd", {}, loss.length ? Number(loss[loss.length - 1].loss).toFixed(4) : "-"),
        el("dt", {}, "time left"), el("dd", { id: "live-eta" }, timeLeft(training)),
        el("dt", {}, "best so far"), el("dd", { id: "live-best" }, training.bestStep ? `step ${training.bestStep}` : "none scored yet"),
      ] : [el("dt", {}, "training"), el("dd", {}, "not started yet: its steps, loss and checkpoints appear here as it trains")]),
    creates() ? null : el("p", { class: "meta why-off" }, "Stopping is off: this API does not create (CONTENTGEN_API_CREATE=off); annotate the LoraTraining contentgen.io/stop=keep-best."),
    training.steps ? stopControl(lora, training, status) : null,
    status,
    loss.length ? [el("h3", {}, "Loss so far"), lossCurve(version)] : null,
    (training.checkpoints || []).length ? [el("h3", {}, "Likeness per checkpoint so far"), likenessCurve(lora, version)] : null,
    el("h3", {}, "Checkpoints scored so far"),
    clipsNote(training),
    checkpointCards(lora, run, training, kept));
}

// The training under way on the LoRA's page, or null where none goes on. It follows the record's
// stream (/api/stream/job/ID) and draws each change; once the run has ended the page shows what it
// made.
export function liveTraining(lora) {
  if (!UNDER_WAY.includes(lora.latestRun.phase)) return null;
  const box = el("section", { class: "live-training", id: "live-training", "data-version": lora.latestRun.version });
  const status = el("div", { class: "stop-status", id: "stop-status" });
  const kept = { cards: new Map(), items: [] };
  let shown = "";
  const draw = (run) => {
    const training = run.training || {};
    const signature = JSON.stringify([run.phase, run.progress, run.stage, training.step, training.stopAsked, (training.checkpoints || []).map((p) => p.step)]);
    if (signature === shown) return;
    shown = signature;
    box.dataset.step = training.step || 0;
    drawLive(box, lora, run, status, kept);
  };
  draw(lora.latestRun);
  follow(lora.id, (state) => { if (state.latestRun && state.latestRun.version === lora.latestRun.version) draw(state.latestRun); },
    () => { timers.add(setTimeout(() => route().catch(() => {}), 300)); });
  return box;
}

// How a version's training ended and where it came from: stopped early (how, at which step, why,
// what that saved) and continued from another version.
export function trainingFacts(v) {
  const facts = [];
  const s = v.stopped;
  if (s) {
    const saved = [s.stepsSaved ? `${s.stepsSaved} steps not run` : "", s.savedUsd ? `${usd(s.savedUsd)} saved` : ""].filter(Boolean).join(", ");
    facts.push(el("dt", {}, "stopped early"), el("dd", { id: `stopped-v${v.version}`, "data-how": s.how },
      `at step ${s.step} of ${s.plannedSteps} (${s.how}${s.by ? `, by ${s.by}` : ""}): ${s.why || ""}`, saved ? ` — ${saved}` : ""));
  }
  const c = v.continuedFrom;
  if (c) facts.push(el("dt", {}, "continued from"), el("dd", { id: `continued-v${v.version}` }, `version ${c.version}, after its step ${c.step}`));
  return facts;
}

// "Train on from this version": how many steps more; the API says first what it runs and its
// estimate (POST .../continue), then, confirmed, starts it (?confirm=true) as a new version.
export function continueTraining(lora, v) {
  const n = v.version;
  if (!v.stateUri) return null;
  const status = el("div", { class: "continue-status", id: `continue-status-v${n}` });
  const steps = el("input", { type: "number", id: `continue-steps-v${n}`, name: "steps", min: 1, max: 100000, value: Math.max(1, Math.round((v.steps || 1000) / 2)) });
  const path = `/api/assets/${ref(lora.id)}/versions/${n}/continue`;
  const ask = async (event) => {
    event.preventDefault();
    let plan;
    try {
      plan = await send("POST", path, { steps: Number(steps.value) });
    } catch (error) {
      notice(status, error.message, true).dataset.code = error.code || "";
      return;
    }
    confirmDialog({
      id: "continue-dialog",
      title: `Train version ${n} on for ${plan.steps} more steps?`,
      said: [`It ${plan.message}.`, plan.estimate],
      confirm: plan.estimateUsd ? `Train ${plan.steps} steps more for ${usd(plan.estimateUsd)}` : `Train ${plan.steps} steps more (free)`,
      act: async () => {
        let done;
        try {
          done = await send("POST", `${path}?confirm=true`, { steps: plan.steps });
        } catch (error) {
          closeDialog();
          notice(status, error.message, true).dataset.code = error.code || "";
          return;
        }
        closeDialog();
        if (done.resource) created.add(done.resource.jobId);
        notice(status, done.message, false).id = `continue-started-v${n}`;
        if (done.resource) timers.add(setTimeout(() => { location.hash = `#/lora/${ref(lora.id)}`; route().catch(() => {}); }, 500));
      },
    });
  };
  return el("details", { class: "continue-training", id: `continue-v${n}` },
    el("summary", {}, `Train on from version ${n}`),
    el("form", { class: "create", onsubmit: ask },
      el("label", {}, "Steps more", steps),
      el("p", { class: "meta wide" }, `From its LoRA and optimizer state as its training left them (step ${v.steps}); a new version, this one kept as it is.`),
      el("div", { class: "buttons" }, el("button", { type: "submit", id: `continue-ask-button-v${n}`, disabled: !creates(), title: createOffTitle() }, "What it runs and costs"))),
    status);
}
