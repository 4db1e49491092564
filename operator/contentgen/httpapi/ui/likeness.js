// A LoRA version's likeness report (docs/likeness.md): its verdict, scale, numbers and grids.

import { contentUrl } from "./api.js";
import { el } from "./dom.js";
import { counted, num, share } from "./format.js";
import { openLightbox } from "./lightbox.js";

// A version's likeness report (docs/likeness.md): the numbers a person chooses a version by, one
// row each, and the grid of every evaluation picture with and without the LoRA.
export const LIKENESS_ROWS = [
  ["verdict", (l) => l.verdict],
  ["median similarity", (l) => num(l.median) + (l.percent == null ? "" : ` (${Math.round(l.percent)} %)`)],
  ["without the LoRA", (l) => num(l.baselineMedian)],
  ["gain", (l) => num(l.gain)],
  ["faces over the threshold", (l) => share(l.aboveThreshold)],
  ["pictures without a face", (l) => share(l.noFaceRate)],
  ["bleed onto the other person", (l) => num(l.bleed)],
  ["closest to one training image", (l) => num(l.copySimilarity) + (l.copies ? ` (${counted(l.copies, "copy")})` : "")],
  ["faces alike to each other", (l) => num(l.sameness)],
  ["the dataset's own (upper bound)", (l) => num(l.upperBound)],
];

const VERDICTS = ["good", "poor", "no-faces", "unmeasured", "skipped"];
// A scale's ends where a report has no baseline or no upper bound (docs/likeness.md#the-score).
const STRANGERS = 0.08;
const ONE_PERSON = 0.553;

// The ends of a report's scale, named: 0 % the model without the LoRA, 100 % the subject's own
// photographs (leave-one-out), or the calibration's strangers and one person where it has neither.
function scaleEnds(l) {
  return [
    l.baselineMedian === null || l.baselineMedian === undefined
      ? { value: STRANGERS, label: "two strangers" } : { value: Number(l.baselineMedian), label: "without the LoRA" },
    l.upperBound === null || l.upperBound === undefined
      ? { value: ONE_PERSON, label: "two pictures of one person" } : { value: Number(l.upperBound), label: "the subject's own photographs" },
  ];
}

function percentOf(l) {
  if (l.median === null || l.median === undefined) return null;
  if (l.percent !== null && l.percent !== undefined) return Number(l.percent);
  const [low, high] = scaleEnds(l);
  return high.value > low.value ? ((l.median - low.value) / (high.value - low.value)) * 100 : null;
}

// One line: the verdict, the median and where it is on the scale.
export function verdictLine(l) {
  const percent = percentOf(l);
  const [low, high] = scaleEnds(l);
  return `likeness ${l.verdict}${l.median === null || l.median === undefined ? "" : `, median ${num(l.median)}`}` +
    (percent === null ? "" : ` (${Math.round(percent)} % of the way from ${low.label}, ${num(low.value)}, to ${high.label}, ${num(high.value)})`);
}

// A likeness verdict as a badge (good, poor, no-faces, unmeasured, skipped) with its median; the
// summary and every reason on hover.
export function verdictBadge(l, id) {
  if (!l) return el("span", { class: "badge verdict verdict-none", "data-verdict": "none", title: "No likeness evaluation", id }, "not evaluated");
  const kind = VERDICTS.includes(l.verdict) ? l.verdict : "other";
  return el("span", { class: `badge verdict verdict-${kind}`, "data-verdict": l.verdict, "data-median": l.median ?? "", title: [verdictLine(l), ...(l.reasons || [])].join("\n"), id },
    l.verdict, l.median === null || l.median === undefined ? "" : ` ${num(l.median)}`);
}

// On a card: the badge, which opens its reasons one line each (a hover shows them too).
export function verdictReasons(l, label) {
  const tail = label ? el("span", { class: "meta" }, ` ${label}`) : null;
  const reasons = (l && l.reasons) || [];
  if (!reasons.length) return el("div", { class: "verdict-line" }, verdictBadge(l), tail);
  return el("details", { class: "verdict-line" }, el("summary", { title: [verdictLine(l), ...reasons].join("\n") }, verdictBadge(l), tail),
    el("ul", { class: "likeness-reasons" }, reasons.map((r) => el("li", {}, r))));
}

// The median on the report's own scale, both ends named. Not capped: over 100 % the faces are more
// alike to the subject than the subject's own photographs are to each other (copies); the mark
// stops at the end and the words say so.
export function likenessScale(l, id) {
  const percent = percentOf(l);
  if (percent === null) return null;
  const [low, high] = scaleEnds(l);
  const at = Math.max(0, Math.min(100, percent));
  const fill = el("div", { class: "fill" });
  fill.style.width = `${at}%`; // CSSOM, which the page's CSP allows
  const mark = el("div", { class: "mark" });
  mark.style.left = `${at}%`;
  const kind = VERDICTS.includes(l.verdict) ? l.verdict : "other";
  const beyond = percent > 100 ? ": more alike to the subject than the subject's own photographs are to each other (copies?)"
    : percent < 0 ? ": less alike to the subject than without the LoRA" : "";
  return el("div", { class: `likeness-scale verdict-${kind}`, id, "data-percent": percent.toFixed(1) },
    el("div", { class: "scale-bar", role: "meter", "aria-valuenow": percent.toFixed(1), "aria-valuemin": 0, "aria-valuemax": 100, "aria-label": verdictLine(l) }, fill, mark),
    el("div", { class: "scale-ends" },
      el("span", { class: "low" }, `0 % ${low.label} (${num(low.value)})`),
      el("span", { class: "high" }, `100 % ${high.label} (${num(high.value)})`)),
    el("p", { class: "meta scale-says" }, `median ${num(l.median)} is ${Math.round(percent)} % of the way${beyond}`));
}

// A stored picture of a LoRA version (a likeness grid) for the lightbox.
export function gridItem(loraId, version, uri, title, aside) {
  return { picture: { kind: "grid", src: contentUrl(loraId, uri, 2, false, version), download: contentUrl(loraId, uri, 2, true, version), title, alt: title, aside } };
}

// The version's likeness grid (a row per picture, with and without the LoRA) as a thumbnail of its
// top rows that opens it whole in the lightbox; `caption`: say so under it.
export function likenessGrid(lora, v, caption) {
  const grid = v.likeness && v.likeness.gridUri;
  if (!grid) return null;
  const open = (event) => {
    event.preventDefault();
    openLightbox([gridItem(lora.id, v.version, grid, `Likeness grid of version ${v.version}`, () => [verdictReasons(v.likeness)])], 0);
  };
  const link = el("a", { href: contentUrl(lora.id, grid, 2, false, v.version), class: "open-likeness-grid", onclick: open },
    el("img", { class: "likeness-grid", src: contentUrl(lora.id, grid, 2, false, v.version), alt: `likeness grid of version ${v.version}` }));
  if (!caption) return link;
  const noun = v.likeness.clipFrames ? "clip" : "picture";
  const pictures = v.likeness.images ? counted(v.likeness.images, noun) : `Every ${noun}`;
  return el("figure", { class: "likeness-thumb", id: `likeness-grid-v${v.version}` }, link,
    el("figcaption", { class: "meta" }, `${pictures} with the LoRA and without it, each with its similarity${clipsSaid(v.likeness)}. Click to open the grid whole.`));
}

// A video LoRA's report (or checkpoint's): what each of its pictures is, as a clause ("" for pictures).
export function clipsSaid(l) {
  return l && l.clipFrames ? ` (each a clip's ${l.clipFrames} frames, first to last, scored as its median frame)` : "";
}
