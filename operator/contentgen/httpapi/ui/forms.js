// Form controls of the create forms, and an error's field path to its control.

import { upload } from "./api.js";
import { el, notice, put } from "./dom.js";
import { bytes } from "./format.js";
import { config, session } from "./state.js";

// A Kubernetes name (RFC 1123 subdomain), in words and as the check.
export const NAME_RULE = "lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253";
export const NAME_PATTERN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

// The provider a create of `entry`'s kind runs with: the providers its spec's schema takes, each
// with the words the server's providers give it (/ui/config), and the default. An API that
// runs offline runs every create offline whatever it names: the only choice shown is that one.
export function providerField(entry, chosen) {
  if (config.offline) {
    return field("Provider", select("provider", [["offline", "offline: free placeholders"]], "offline"), false,
      "this API runs every create offline (started with --offline)");
  }
  const noted = (name) => ((config.providers || {})[name] ? `${name} (${config.providers[name]})` : name);
  const options = [["", `default (${entry.defaultOf("provider")})`], ...entry.choices("provider").map((p) => [p, noted(p)])];
  return field("Provider", select("provider", options, chosen));
}

export function field(label, input, wide, hint) {
  return el("label", { class: wide ? "wide" : undefined }, label, input, hint ? el("span", { class: "meta" }, hint) : null);
}

export function select(name, options, chosen) {
  return el("select", { name, id: `f-${name}` }, options.map(([value, label]) => el("option", { value, selected: value === chosen }, label)));
}

export function input(name, attrs) {
  return el("input", { name, id: `f-${name}`, ...attrs });
}

// Which form control a field path of an error names (spec.source.url -> source).
const FIELD_INPUTS = {
  "metadata.name": "name", "metadata.namespace": "namespace", "spec.owner": "owner", "spec.prompt": "prompt",
  "spec.negativePrompt": "negativePrompt", "spec.numImages": "numImages", "spec.imageSize": "imageSize", "spec.seed": "seed",
  "spec.model": "model", "spec.loras": "lora", "spec.source": "source", "spec.triggerWord": "triggerWord",
  "spec.training.steps": "steps", "spec.training.baseModel": "baseModel", "spec.dataset.minFrames": "minFrames",
  "spec.languageCode": "languageCode", "spec.tags": "tags", "spec.description": "description",
  "spec.provider": "provider", "spec.durationSeconds": "durationSeconds", "spec.fps": "fps", "spec.numFrames": "durationSeconds",
  "spec.imageRef": "imageRef", "spec.image": "image", "spec.resolution": "resolution", "spec.aspectRatio": "resolution",
};

export function inputFor(form, path) {
  const key = Object.keys(FIELD_INPUTS).filter((k) => path === k || path.startsWith(`${k}.`) || path.startsWith(`${k}[`)).sort((a, b) => b.length - a.length)[0];
  return key ? form.querySelector(`[name=${FIELD_INPUTS[key]}]`) : null;
}

// A file to upload for a field that takes a URL (`target`, an input): chosen, it is sent to POST
// /api/uploads at once and the stored file's URI fills `target`; the form's create waits for it
// (form.uploading). `accept`: the types the API takes for it; `caps`: what they may be, in words.
export function uploadField(label, target, accept, caps) {
  const name = `${target.name}-file`;
  const file = el("input", { type: "file", name, id: `f-${name}`, accept });
  const status = el("div", { class: "meta upload-status", id: `upload-status-${target.name}`, role: "status" }, caps);
  file.addEventListener("change", () => {
    const chosen = file.files && file.files[0];
    const form = file.form;
    if (!chosen) return;
    const owner = form && form.elements.owner ? form.elements.owner.value : session.owner;
    put(status, `uploading ${chosen.name} (${bytes(chosen.size)})…`);
    const sent = upload(chosen, owner).then((made) => {
      target.value = made.uri;
      put(status, `uploaded ${chosen.name} (${bytes(made.sizeBytes)}): its address is in the field above`);
      status.dataset.uri = made.uri;
    }).catch((error) => {
      put(status);
      notice(status, `${chosen.name}: ${error.message}`, true);
    });
    if (form) form.uploading = sent;
  });
  return el("div", { class: "upload wide" }, el("label", {}, label, file), status);
}
