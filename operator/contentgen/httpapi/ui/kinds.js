// The kind registry: what the web UI does with each kind, declared once here: where a record's
// page is, what its actions and its job page offer, and the form that creates it with the spec that
// form makes. Which kinds the API creates, and their models and sizes, come from the API's schema
// (schema.js). No other module names a kind (tests/httpapi/test_ui_modules.py checks it).

import { api } from "./api.js";
import { baseFacts, baseModels, baseOf, isVideo } from "./basemodels.js";
import { el, put } from "./dom.js";
import { field, input, providerField, select, uploadField } from "./forms.js";
import { loraPicker, pickedLoras } from "./lorapick.js";
import { choices, creatableKinds, defaultOf } from "./schema.js";
import { timers } from "./state.js";

// LoraTraining -> lora-training: the `type` the API's lists and streams filter by.
function typeOf(kind) {
  return kind.replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase();
}

// A kind as declared, with the defaults of what it leaves out. `link`: its record's page (#/link/ID) and
// its create tab; `create`: its form (label, example manifest, fields, spec), or none.
function declare(entry) {
  return {
    type: typeOf(entry.kind),
    seeded: false, // "Same settings, new seed"
    editable: false, // "Edit and run": its create form filled with a version's settings
    pictures: false, // its job page shows every picture of its latest version
    versionInLink: false, // its page opens at a version (?version=N)
    usable: false, // other records use it (its usage says "nothing yet" rather than "-")
    opens: "Open it", // the job page's link to it
    create: null,
    choices: (name) => choices(entry.kind, name),
    defaultOf: (name) => defaultOf(entry.kind, name),
    ...entry,
  };
}

const prompt = (pick) => field("Prompt", el("textarea", { name: "prompt", id: "f-prompt", rows: 3, required: true, maxlength: 4000 }, pick("prompt", "")), true);
const seed = (values, pick) => field("Seed", input("seed", { type: "number", min: 0, max: 4294967295, placeholder: "random", value: values.from ? "" : pick("seed", "") }), false, values.from ? "empty: a new seed" : "");
// The model that applies LoRAs (an image made with one is made with it).
const LORA_MODEL = "flux-lora";
// What POST /api/uploads takes, by what a form's file is for.
const PICTURE_TYPES = "image/png,image/jpeg,image/webp";
const VIDEO_TYPES = "video/mp4,video/quicktime,video/webm,video/x-matroska";
const AUDIO_TYPES = "audio/mpeg,audio/mp4,audio/wav,audio/ogg";

export const IMAGES = declare({
  kind: "ImageGeneration",
  link: "image",
  seeded: true,
  editable: true,
  pictures: true,
  compareSize: "square", // Compare versions' first choice
  create: {
    label: "Images",
    example: "imagegeneration.yaml",
    async fields({ values, prefill, pick }) {
      const [loraList, bases] = await Promise.all([
        api("/api/assets/loras", { limit: 200 }).catch(() => ({ items: [] })),
        baseModels().catch(() => []),
      ]);
      const prefillLora = ((prefill.loras || [])[0] || {});
      // a LoRA with a version to use (one whose runs all failed has none), made for pictures
      const usable = loraList.items.filter((l) => l.versions.length && !isVideo(bases, l.versions[l.versions.length - 1]));
      const chosen = { name: values.lora || (prefillLora.loraRef || {}).name, version: values.loraVersion || (prefillLora.loraRef || {}).version, scale: prefillLora.scale };
      return [
        prompt(pick),
        field("Negative prompt", el("textarea", { name: "negativePrompt", id: "f-negativePrompt", rows: 2, maxlength: 4000 }, pick("negativePrompt", "")), true),
        field("Model", select("model", [["", `default (${IMAGES.defaultOf("model")})`], ...IMAGES.choices("model").map((m) => [m, m])], pick("model", ""))),
        field("Size", select("imageSize", IMAGES.choices("imageSize").map((s) => [s, s]), pick("imageSize", IMAGES.defaultOf("imageSize")))),
        field("Images", input("numImages", { type: "number", min: 1, max: 8, value: pick("numImages", "1") })),
        seed(values, pick),
        ...loraPicker(usable, chosen, () => ""),
        providerField(IMAGES, pick("provider", "")),
      ];
    },
    spec(spec, { text, number }) {
      spec.prompt = text("prompt");
      if (text("negativePrompt")) spec.negativePrompt = text("negativePrompt");
      if (text("model")) spec.model = text("model");
      spec.imageSize = text("imageSize");
      spec.numImages = number("numImages");
      if (number("seed") !== undefined) spec.seed = number("seed");
      const loras = pickedLoras(text, number);
      if (loras) {
        spec.loras = loras;
        spec.model = LORA_MODEL;
      }
    },
  },
});

// The LoRA form's base model, what it needs and costs on the providers offered, said as it changes.
let defaultBase = ""; // what a LoraTraining without training.baseModel makes: left out of the spec
async function baseModelFields(values) {
  const steps = input("steps", { type: "number", min: 100, max: 10000, placeholder: "1000", value: values.steps || "" });
  const bases = await baseModels().catch(() => []);
  if (!bases.length) return { fields: [field("Training steps", steps)], steps };
  defaultBase = (bases.find((b) => b.default) || bases[0]).name;
  const chosen = values.baseModel || defaultBase;
  const choice = select("baseModel", bases.map((b) => [b.name, `${b.title}: ${b.video ? "clips" : "pictures"}`]), chosen);
  const facts = el("div", { class: "wide", id: "base-model-box" });
  const show = async () => {
    const asked = Number(steps.value) >= 100 ? Number(steps.value) : 1000;
    const items = await baseModels(asked).catch(() => bases);
    const form = choice.form;
    const provider = (form && form.elements.provider ? form.elements.provider.value : "") || LORAS.defaultOf("provider");
    put(facts, baseFacts(baseOf(items, choice.value), asked, provider));
  };
  for (const control of [choice, steps]) control.addEventListener("change", () => { show().catch(() => {}); });
  timers.add(setTimeout(() => { show().catch(() => {}); }, 0)); // once the form holds the provider choice
  return {
    fields: [
      field("Made for (its base model)", choice, false, "pictures (FLUX.1) or clips of a Wan video model"),
      field("Training steps", steps),
      facts,
    ],
    steps,
    show,
  };
}

export const LORAS = declare({
  kind: "LoraTraining",
  link: "lora",
  usable: true,
  opens: "Open the LoRA",
  create: {
    label: "LoRA",
    example: "loratraining.yaml",
    async fields({ values }) {
      const source = input("source", { type: "text", required: true, placeholder: "https://…/video.mp4 or s3://bucket/key", value: values.source || "" });
      const base = await baseModelFields(values);
      const provider = providerField(LORAS, values.provider || "");
      const providerSelect = provider.querySelector("select");
      if (providerSelect && base.show) providerSelect.addEventListener("change", () => { base.show().catch(() => {}); });
      return [
        field("Source video URL", source, true),
        uploadField("…or upload the video", source, VIDEO_TYPES, "MP4, MOV, WebM or MKV, at most 1 GiB; stored for this owner"),
        field("Trigger word", input("triggerWord", { required: true, maxlength: 32, value: values.triggerWord || "" }), false, "the word that calls the LoRA in a prompt"),
        ...base.fields,
        field("Fewest images", input("minFrames", { type: "number", min: 1, max: 100, placeholder: "10", value: values.minFrames || "" }), false, "a short video has fewer shots of the face (the sample video: 4)"),
        provider,
      ];
    },
    spec(spec, { text, number }) {
      spec.source = { url: text("source") };
      spec.triggerWord = text("triggerWord");
      const training = {};
      if (number("steps") !== undefined) training.steps = number("steps");
      if (text("baseModel") && text("baseModel") !== defaultBase) training.baseModel = text("baseModel");
      if (Object.keys(training).length) spec.training = training;
      if (number("minFrames") !== undefined) spec.dataset = { minFrames: number("minFrames") };
    },
  },
});

export const TRANSCRIPTS = declare({
  kind: "Transcription",
  link: "transcript",
  versionInLink: true,
  opens: "Read the transcript",
  create: {
    label: "Transcript",
    example: "transcription.yaml",
    async fields({ values }) {
      const source = input("source", { type: "text", required: true, placeholder: "https://…/audio.mp3", value: values.source || "" });
      return [
        field("Audio or video URL", source, true),
        uploadField("…or upload the audio or video", source, `${AUDIO_TYPES},${VIDEO_TYPES}`, "MP3, M4A, WAV, OGG or a video, at most 1 GiB; stored for this owner"),
        field("Language code", input("languageCode", { placeholder: "detected", maxlength: 10 })),
        el("label", { class: "check" }, input("speakerLabels", { type: "checkbox", checked: true }), "Label speakers"),
        providerField(TRANSCRIPTS, values.provider || ""),
      ];
    },
    spec(spec, { text, data }) {
      spec.source = { url: text("source") };
      if (text("languageCode")) spec.languageCode = text("languageCode");
      if (data.get("speakerLabels")) spec.speakerLabels = true;
    },
  },
});

// Made by "Evaluate again" on a LoRA version, not by a create form.
export const EVALUATIONS = declare({ kind: "LoraEvaluation", link: "evaluation" });

export const VIDEOS = declare({
  kind: "VideoGeneration",
  link: "video",
  seeded: true,
  create: {
    label: "Video",
    example: "videogeneration.yaml",
    async fields({ values, prefill, pick }) {
      const picture = input("image", { type: "text", placeholder: "https://…/picture.png or s3://bucket/key", value: (prefill.image || {}).url || values.image || "" });
      const [loraList, bases] = await Promise.all([
        api("/api/assets/loras", { limit: 200 }).catch(() => ({ items: [] })),
        baseModels().catch(() => []),
      ]);
      // a LoRA with a version to use, made for a video model
      const usable = loraList.items.filter((l) => l.versions.length && isVideo(bases, l.versions[l.versions.length - 1]));
      const model = select("model", [["", `default (${VIDEOS.defaultOf("model")})`], ...VIDEOS.choices("model").map((m) => [m, m])], pick("model", ""));
      const loads = el("span", { class: "meta", id: "lora-loads-on" });
      const fits = (lora) => { // the model that loads the LoRA chosen: kept where it does, else the first that does
        put(loads);
        if (!lora) return;
        const base = baseOf(bases, lora.versions[lora.versions.length - 1].baseModel || "");
        put(loads, `a ${base.title} LoRA: models ${base.loadsOn.join(", ") || "none here"} load it`);
        if (base.loadsOn.length && !base.loadsOn.includes(model.value)) model.value = base.loadsOn[0];
      };
      const prefillLora = ((prefill.loras || [])[0] || {});
      const chosen = { name: values.lora || (prefillLora.loraRef || {}).name, version: values.loraVersion || (prefillLora.loraRef || {}).version, scale: prefillLora.scale };
      const lora = loraPicker(usable, chosen, (l) => `${baseOf(bases, l.versions[l.versions.length - 1].baseModel || "").title}, `, fits);
      return [
        prompt(pick),
        el("label", {}, "Model", model, loads),
        ...lora,
        field("Animate the images of (optional)", input("imageRef", { placeholder: "an ImageGeneration's name", value: (prefill.imageRef || {}).name || values.imageRef || "" }), false, "image-to-video models"),
        field("…or a picture's URL (optional)", picture, true, "image-to-video models: one picture, by its URL or uploaded below"),
        uploadField("…or upload the picture", picture, PICTURE_TYPES, "PNG, JPEG or WebP, at most 20 MiB; stored for this owner"),
        field("Length (seconds)", input("durationSeconds", { type: "number", min: 0, max: 120, step: 0.5, placeholder: "the model's default", value: pick("durationSeconds", "") })),
        field("Frame rate", input("fps", { type: "number", min: 1, max: 60, placeholder: "the model's default", value: pick("fps", "") })),
        // The resolutions some model takes (the schema's list also has 1080p, which none does).
        field("Resolution", select("resolution", [["", "the model's default"], ["480p", "480p"], ["580p", "580p"], ["720p", "720p"]], pick("resolution", ""))),
        seed(values, pick),
        providerField(VIDEOS, pick("provider", "")),
      ];
    },
    spec(spec, { text, number }) {
      spec.prompt = text("prompt");
      if (text("model")) spec.model = text("model");
      if (number("durationSeconds") !== undefined) spec.durationSeconds = number("durationSeconds");
      if (number("fps") !== undefined) spec.fps = number("fps");
      if (text("resolution")) spec.resolution = text("resolution");
      if (number("seed") !== undefined) spec.seed = number("seed");
      if (text("imageRef")) spec.imageRef = { name: text("imageRef") };
      if (text("image")) spec.image = { url: text("image") };
      const loras = pickedLoras(text, number);
      if (loras) spec.loras = loras;
    },
  },
});

// The order of the create form's tabs.
const KINDS = [IMAGES, LORAS, TRANSCRIPTS, EVALUATIONS, VIDEOS];

// A record's kind as the UI knows it; undefined for a kind it does not (its job page still shows it).
export function kindOf(kind) {
  return KINDS.find((k) => k.kind === kind);
}

// A record's own page (#/LINK/ID), or undefined.
export function linkOf(kind) {
  const known = kindOf(kind);
  return known ? known.link : undefined;
}

// The kinds the create view offers: those with a form that the API creates.
export function creatable() {
  const made = creatableKinds();
  return KINDS.filter((k) => k.create && made.includes(k.kind));
}
