// The API client: JSON calls, its errors, the content route's links, and the status streams.

import { streams, timers } from "./state.js";

export class ApiFailure extends Error {
  constructor(status, code, message, fields) {
    super(message);
    this.status = status;
    this.code = code;
    this.fields = fields || [];
  }
}

export async function failure(response) {
  let code = "error";
  let message = `${response.status} ${response.statusText}`;
  let fields = [];
  try {
    const body = await response.json();
    code = body.error.code;
    message = body.error.message;
    fields = body.error.fields || [];
  } catch (ignored) { /* not JSON */ }
  return new ApiFailure(response.status, code, message, fields);
}

export function withQuery(path, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") query.set(key, value);
  }
  return query.toString() ? `${path}?${query}` : path;
}

// A successful answer's JSON. A body that does not parse (cut short on its way: a read is asked
// again once) is said in words, naming what was asked, not as the parser's own error.
async function answer(response, what) {
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch (ignored) {
    throw new ApiFailure(response.status, "unreadable",
      `The answer to ${what} could not be read (${text.length} characters, not whole JSON): try again.`);
  }
}

// A read is asked again once when its answer was lost on the way (the connection dropped, the
// body cut short): it changes nothing, and a person would otherwise reload the page for it.
export async function api(path, params) {
  const url = withQuery(path, params);
  for (let attempt = 1; ; attempt += 1) {
    try {
      const response = await fetch(url, { credentials: "same-origin" });
      if (!response.ok) throw await failure(response);
      return await answer(response, `GET ${path}`);
    } catch (error) {
      const lost = error instanceof TypeError || error.code === "unreadable";
      if (attempt >= 2 || !lost) throw error;
    }
  }
}

export async function apiText(path, params) {
  const response = await fetch(withQuery(path, params), { credentials: "same-origin" });
  if (!response.ok) throw await failure(response);
  return response.text();
}

export async function send(method, path, body) {
  const response = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw await failure(response);
  return response.status === 204 ? null : answer(response, `${method} ${path}`);
}

export function ref(id) {
  return encodeURIComponent(id);
}

// The path of a stored file as the content route takes it: its last `parts` path segments.
export function fileOf(uri, parts) {
  return uri.split("?")[0].split("/").slice(-parts).join("/");
}

// `version`: the version the file belongs to (image_1.png is in every version of a record).
export function contentUrl(id, uri, parts, download, version) {
  const query = new URLSearchParams({ file: fileOf(uri, parts) });
  if (version) query.set("version", version);
  if (download) query.set("download", "true");
  return `/api/assets/${ref(id)}/content?${query}`;
}

// The version a stored output's URI names (…/v3/…); undefined for unversioned ones (before versions).
export function versionOf(uri) {
  const found = uri.split("?")[0].match(/\/v(\d+)\//g);
  return found ? Number(found[found.length - 1].slice(2, -1)) : undefined;
}

export function thumbOf(id, image, version) {
  return image.thumbnailUri ? contentUrl(id, image.thumbnailUri, 2, false, version) : contentUrl(id, image.uri, 1, false, version);
}

export function follow(id, onStatus, onEnd) {
  const source = new EventSource(`/api/stream/job/${ref(id)}`);
  streams.add(source);
  source.addEventListener("status", (event) => onStatus(JSON.parse(event.data)));
  source.addEventListener("end", () => { source.close(); streams.delete(source); if (onEnd) onEnd(); });
  source.addEventListener("error", () => { if (source.readyState === EventSource.CLOSED) streams.delete(source); });
}

// Follow a list's changes (/api/stream/jobs): `onJob` gets each changed record. Resolves once
// the server has the stream's starting point (its `ready`): read the list after that, and a change
// written before it is in the list, one after it comes as an event. (An EventSource that is open
// is not yet one the server has.) A stream that cannot start holds the view back 3 s at most.
export function followJobs(url, onJob) {
  const source = new EventSource(url);
  streams.add(source);
  source.addEventListener("job", (event) => onJob(JSON.parse(event.data)));
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 3000);
    timers.add(timer);
    source.addEventListener("ready", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

// A file for a create to name (POST /api/uploads): its bytes as the body, its type as the request's;
// the answer names the stored file (`uri` goes in the spec). Its name is kept where the key takes it.
export async function upload(file, owner) {
  const name = (file.name || "").replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^[^A-Za-z0-9]+/, "").slice(0, 100);
  const response = await fetch(withQuery("/api/uploads", { owner, name }), {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": file.type || "application/octet-stream" },
    body: file,
  });
  if (!response.ok) throw await failure(response);
  return answer(response, "the upload");
}
