// The transcripts view and a transcript's page, its player following the text.

import { recordActions } from "./actions.js";
import { api, apiText, fileOf, ref, withQuery } from "./api.js";
import { el, put } from "./dom.js";
import { filterForm, filterValues, isFiltered, pager } from "./filters.js";
import { clock, counted, when } from "./format.js";
import { TRANSCRIPTS } from "./kinds.js";
import { badge, downloadButton, emptyState, runBadge, waits } from "./parts.js";
import { main, PAGE, session } from "./state.js";

export async function transcripts() {
  const values = filterValues();
  const page = await api("/api/assets/transcripts", { ...values, limit: PAGE.list });
  const admin = session.admin;
  const rows = page.items.map((t) => el("tr", { "data-id": t.id },
    el("td", { "data-label": "name" }, el("a", { href: `#/transcript/${ref(t.id)}` }, `${t.namespace}/${t.name}`)),
    admin ? el("td", { "data-label": "owner", class: "owner" }, t.owner) : null,
    el("td", { "data-label": "status" }, badge(t.status), runBadge(t.latestRun), waits(t.latestRun)),
    el("td", { "data-label": "length" }, `${t.wordCount} words, ${clock(t.durationSeconds)}, ${counted(t.speakers, "speaker")}`),
    el("td", { "data-label": "created" }, when(t.createdAt))));
  const head = ["name", admin ? "owner" : null, "status", "length", "created"].filter(Boolean);
  put(main, 
    el("h1", {}, "Transcripts"),
    filterForm("transcripts", ["status", "tag", "since", "until"]),
    rows.length ? el("table", { id: "transcripts", class: "stack" }, el("tr", { class: "head" }, head.map((h) => el("th", {}, h))), rows)
      : emptyState("transcripts", TRANSCRIPTS, isFiltered(values)),
    pager("transcripts", page),
  );
}

// The transcript as speaker turns with their times; the player beside it follows the text (the
// turn being spoken is marked and scrolled to), and a click on a time plays from there.
export async function transcriptView(id) {
  const t = await api(`/api/jobs/${ref(id)}`);
  const values = filterValues();
  const latest = values.version ? t.versions.find((v) => String(v.version) === values.version) : t.versions[t.versions.length - 1];
  const status = el("div", { id: "action-status" });
  const text = el("pre", { class: "transcript-text", id: "transcript-text" }, latest ? "loading…" : "No transcript yet.");
  const files = (version) => [
    downloadButton(t.id, version.transcript.textUri, 1, "transcript.txt", version.version), " ",
    downloadButton(t.id, version.transcript.jsonUri, 1, "transcript.json", version.version)];
  const exportLink = (format, label) => el("a", { class: "button download", id: `export-${format}`, download: "",
    href: withQuery(`/api/assets/${ref(t.id)}/transcript`, { format, version: latest.version, download: "true" }) }, label);
  const others = t.versions.filter((v) => v !== latest).reverse().map((v) => el("li", { "data-version": v.version },
    el("a", { href: `#/transcript/${ref(t.id)}?version=${v.version}` }, `v${v.version}`), ` (${when(v.createdAt)}): ${v.transcript.wordCount} words `, ...files(v)));
  const segments = el("div", { class: "segments", id: "segments" }, el("p", { class: "empty" }, latest ? "loading…" : "No transcript yet."));
  const player = el("audio", { id: "player", controls: true, preload: "metadata" });
  const follow = el("input", { type: "checkbox", id: "follow", checked: true });
  const playerRow = el("div", { class: "player", id: "player-row" }, player, el("label", { class: "meta" }, follow, " follow the text"));
  put(main, 
    el("h1", {}, `Transcript ${t.namespace}/${t.name}`),
    el("dl", { class: "facts" },
      el("dt", {}, "status"), el("dd", {}, badge(t.status), runBadge(t.latestRun), waits(t.latestRun)),
      session.admin ? [el("dt", {}, "owner"), el("dd", {}, t.owner)] : [],
      el("dt", {}, "version"), el("dd", {}, latest ? `v${latest.version} of ${t.versions.length}` : "-"),
      el("dt", {}, "length"), el("dd", {}, latest ? `${latest.transcript.wordCount} words, ${clock(latest.transcript.durationSeconds)}, ${counted(latest.transcript.speakers, "speaker")}` : "-"),
      el("dt", {}, "source"), el("dd", {}, (latest && latest.sourceUrl) || t.sourceUrl || "-"),
      el("dt", {}, "export"), el("dd", { id: "exports" }, latest ? [exportLink("srt", "SRT subtitles"), " ", exportLink("vtt", "WebVTT"), " ", exportLink("txt", "Timed text"), " ", ...files(latest)] : "-")),
    recordActions(t, latest && latest.version, status), status,
    latest ? playerRow : null,
    el("h2", {}, "Transcript"), segments,
    latest ? el("details", { id: "plain" }, el("summary", {}, "Plain text"), text) : null,
    others.length ? el("h2", {}, "Other versions") : null,
    others.length ? el("ul", { id: "earlier-versions" }, others) : null);
  if (!latest) return;
  player.addEventListener("error", () => {
    put(playerRow, el("p", { class: "meta", id: "no-player" }, "The source cannot be played here (a local file on another machine, or a bucket this API does not serve). The times still say where each turn is."));
  });
  player.src = withQuery(`/api/assets/${ref(t.id)}/source`, { version: latest.version });
  // t=SECONDS (a search hit's link): play from there once the player can
  const seek = values.t !== undefined && values.t !== "" ? Number(values.t) : NaN;
  if (Number.isFinite(seek)) player.addEventListener("loadedmetadata", () => { player.currentTime = seek; }, { once: true });
  const [timed, plain] = await Promise.all([
    api(`/api/assets/${ref(t.id)}/transcript`, { version: latest.version }).catch((error) => error),
    apiText(`/api/assets/${ref(t.id)}/content`, { file: fileOf(latest.transcript.textUri, 1), version: latest.version }).catch((error) => error),
  ]);
  text.textContent = plain instanceof Error ? `Could not load the text (${plain.message}).` : plain;
  if (timed instanceof Error) {
    put(segments, el("p", { class: "error" }, `Could not load the timed transcript: ${timed.message}`));
    return;
  }
  const rows = timed.segments.map((s, n) => el("div", { class: "segment", "data-start": s.start, "data-end": s.end, "data-n": n },
    el("button", { type: "button", class: "time", title: "Play from here", onclick: () => { player.currentTime = s.start; player.play().catch(() => {}); } }, clock(s.start)),
    el("p", {}, s.speaker ? el("span", { class: `speaker speaker-${s.speaker}` }, `Speaker ${s.speaker}`) : null, s.text)));
  put(segments, 
    timed.placeholder ? el("p", { class: "notice" }, "The offline provider wrote this: it is a placeholder, not a transcript of the audio.") : null,
    timed.timed ? null : el("p", { class: "meta" }, "The provider gave no word times: the text spans the audio."),
    ...(rows.length ? rows : [el("p", { class: "empty" }, "No words were heard.")]));
  if (Number.isFinite(seek)) { // the turn the hit is in, marked and in view even where nothing plays
    let at = -1;
    timed.segments.forEach((seg, n) => { if (seg.start <= seek + 0.05) at = n; });
    if (at >= 0) { rows[at].classList.add("hit"); rows[at].id = "hit"; rows[at].scrollIntoView({ block: "center" }); }
  }
  let active = -1;
  const sync = () => {
    const now = player.currentTime;
    let found = -1;
    timed.segments.forEach((s, n) => { if (s.start <= now + 0.05) found = n; });
    if (found === active) return;
    if (active >= 0) rows[active].classList.remove("active");
    active = found;
    if (active >= 0) {
      rows[active].classList.add("active");
      segments.dataset.active = String(active);
      if (follow.checked) rows[active].scrollIntoView({ block: "nearest" });
    }
  };
  player.addEventListener("timeupdate", sync);
  player.addEventListener("seeked", sync);
}
