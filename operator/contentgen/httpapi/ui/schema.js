// What the API takes, read once at start from its OpenAPI document (/openapi.json, which needs no
// login): the kinds POST /api/resources creates, the `type` names of the lists' filter, and each
// kind's choices and defaults (models, image sizes). The UI copies none of these lists.

import { api } from "./api.js";

let schema = null;

// Read it (once): a page whose schema cannot be read still shows the catalog, with no kind to create.
export async function loadSchema() {
  if (schema) return;
  try {
    schema = await api("/openapi.json");
  } catch (ignored) { /* the lists stay empty */ }
}

function schemas() {
  return (schema && schema.components && schema.components.schemas) || {};
}

// Its choices, where an optional field is anyOf [the field, null].
function choicesOf(definition) {
  if (!definition) return [];
  if (definition.enum) return definition.enum;
  const choosing = (definition.anyOf || []).find((d) => d.enum);
  return choosing ? choosing.enum : [];
}

// The kinds the API creates (ResourceRequest's discriminator), in its order.
export function creatableKinds() {
  const request = schemas().ResourceRequest || {};
  return Object.keys((request.discriminator && request.discriminator.mapping) || {});
}

function property(kind, name) {
  const spec = schemas()[`${kind}RequestSpec`] || {};
  return (spec.properties || {})[name];
}

// The values a field of a kind's spec takes (a model, an image size), as the API documents them.
export function choices(kind, name) {
  return choicesOf(property(kind, name));
}

// The value the API gives a field of a kind's spec that a create leaves out.
export function defaultOf(kind, name) {
  const found = property(kind, name);
  return found ? found.default : undefined;
}

// The kinds of records as the lists name them: GET /api/jobs's `type` (a kind's kebab-case name).
export function recordTypes() {
  const list = ((schema && schema.paths && schema.paths["/api/jobs"]) || {}).get || {};
  const type = (list.parameters || []).find((p) => p.name === "type");
  return type ? choicesOf(type.schema) : [];
}
