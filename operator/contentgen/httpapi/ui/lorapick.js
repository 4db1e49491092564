// Choosing a LoRA in a create form (an image's, a video's): its LoRAs that the form's model can
// load, a version (its latest by default, said with its likeness, and an earlier version that
// scored better said beside it: what a loraRef without `version` uses, docs/concepts.md), a scale.

import { el, put } from "./dom.js";
import { field, input, select } from "./forms.js";
import { counted, num } from "./format.js";

function likenessWords(v) {
  const l = v && v.likeness;
  if (!l || !l.verdict) return "not evaluated";
  return `likeness ${l.verdict}${l.median == null ? "" : ` ${num(l.median)}`}`;
}

function ranks(v) {
  const l = v.likeness;
  return l && l.median != null ? [l.verdict === "good" ? 1 : 0, Number(l.median)] : null;
}

function better(a, b) {
  return a[0] !== b[0] ? a[0] > b[0] : a[1] > b[1];
}

// Why "its latest version" is that one, and a version that scored better: shown under the choice.
export function latestWords(lora) {
  const latest = lora.versions[lora.versions.length - 1];
  const mine = ranks(latest);
  let best = null;
  for (const v of lora.versions) {
    const r = ranks(v);
    if (v !== latest && r && (!best || better(r, best.r))) best = { v, r };
  }
  const said = `Without a version, it uses its latest, v${latest.version} (${likenessWords(latest)}).`;
  return best && (!mine || better(best.r, mine)) ? `${said} v${best.v.version} scored better (${likenessWords(best.v)}): choose it to use it.` : said;
}

// The LoRA, version and scale controls; `usable`: the LoRAs to offer (those with a version);
// `chosen`: {name, version, scale} to start with; `title(lora)`: what the LoRA's option says after it.
export function loraPicker(usable, chosen, title, onChange) {
  const loraSelect = select("lora", [["", "none"], ...usable.map((l) => [l.name, `${l.namespace}/${l.name} (${l.triggerWord}, ${title(l)}${counted(l.versions.length, "version")})`])], chosen.name || "");
  const versionSelect = select("loraVersion", [["", "its latest version"]], "");
  const note = el("span", { class: "meta", id: "lora-latest" });
  const fill = () => {
    const lora = usable.find((l) => l.name === loraSelect.value);
    const latest = lora ? lora.versions[lora.versions.length - 1] : null;
    put(versionSelect, el("option", { value: "" }, latest ? `its latest version (v${latest.version} · ${likenessWords(latest)})` : "its latest version"),
      ...(lora ? lora.versions.map((v) => el("option", { value: v.version, selected: String(v.version) === String(chosen.version || "") },
        `v${v.version} · ${likenessWords(v)}`)) : []));
    put(note, lora ? latestWords(lora) : "");
    if (onChange) onChange(lora || null);
  };
  loraSelect.addEventListener("change", () => { chosen = {}; fill(); });
  fill();
  return [
    field("LoRA", loraSelect),
    el("label", {}, "LoRA version", versionSelect, note),
    field("LoRA scale", input("scale", { type: "number", min: 0, max: 2, step: 0.05, value: String(chosen.scale ?? 1) })),
  ];
}

// The spec's loras from the picker's controls (none where no LoRA is chosen).
export function pickedLoras(text, number) {
  if (!text("lora")) return undefined;
  const loraRef = { name: text("lora") };
  if (text("loraVersion")) loraRef.version = Number(text("loraVersion"));
  return [{ loraRef, scale: number("scale") ?? 1 }];
}
