// The jobs view and a job's page, live from the status streams.

import { recordActions } from "./actions.js";
import { api, ApiFailure, follow, followJobs, ref, thumbOf, withQuery } from "./api.js";
import { el, progressBar, put, setProgress } from "./dom.js";
import { filterForm, filterValues, isFiltered, pager } from "./filters.js";
import { when } from "./format.js";
import { IMAGES, kindOf, linkOf } from "./kinds.js";
import { badge, costOf, emptyState, recordThumb, runBadge, waits } from "./parts.js";
import { route } from "./router.js";
import { usagePanel } from "./sharing.js";
import { created, main, PAGE, session, timers } from "./state.js";

// What a Jobs row shows of a record: its status, versions and latest run (why it waits), live.
function jobRow(job) {
  const run = job.latestRun;
  const bar = progressBar(run.progress, false, `progress of ${job.namespace}/${job.name}`);
  const row = el("tr", { "data-id": job.id });
  const cells = {
    status: el("td", { class: "status", "data-label": "status" }),
    run: el("td", { class: "run", "data-label": "latest run" }),
    stage: el("td", { class: "stage", "data-label": "stage" }),
    versions: el("td", { class: "versions", "data-label": "versions" }),
  };
  row.append(
    el("td", { "data-label": "name" }, el("a", { href: `#/job/${ref(job.id)}` }, `${job.namespace}/${job.name}`)),
    session.admin ? el("td", { class: "owner", "data-label": "owner" }, job.owner) : "",
    el("td", { "data-label": "type" }, job.type), cells.status, cells.run, el("td", { "data-label": "progress" }, bar), cells.stage, cells.versions,
    el("td", { "data-label": "created" }, when(job.createdAt)));
  row.update = (state) => {
    put(cells.status, badge(state.status));
    put(cells.run, runBadge(state.latestRun));
    setProgress(bar, state.latestRun.progress);
    put(cells.stage, state.latestRun.stage || "", waits(state.latestRun) || "");
    const count = state.versionCount !== undefined ? state.versionCount : (state.versions || []).length;
    cells.versions.textContent = count ? `v${state.latestVersion} (${count})` : "-";
  };
  row.update(job);
  return row;
}

// Does a record the stream announces belong on this page (its filters)?
function matches(state, values) {
  if (values.type && state.type !== values.type) return false;
  if (values.run && state.latestRun.phase !== values.run) return false;
  if (values.status ? state.status !== values.status : state.status === "Deleted") return false;
  if (values.tag && !(state.tags || []).includes(values.tag)) return false;
  if (values.owner && state.owner !== values.owner) return false;
  return true;
}

export async function jobs() {
  // One stream for the whole list, started before the list is read, so no change falls in between.
  const values = filterValues();
  const rows = new Map();
  const early = [];
  let table = null;
  const firstPage = !values.offset || values.offset === "0";
  const apply = (state) => {
    const row = rows.get(state.id);
    if (row) {
      row.update(state);
    } else if (firstPage && matches(state, values) && !values.until) { // a new record: created now
      const added = jobRow(state);
      rows.set(state.id, added);
      if (!table) return;
      table.querySelector("tr").after(added); // the newest first, under the header
      document.getElementById("empty")?.remove();
    }
  };
  await followJobs(withQuery("/api/stream/jobs", { type: values.type, owner: values.owner }), (state) => {
    if (table) apply(state); else early.push(state);
  });
  const page = await api("/api/jobs", { ...values, limit: PAGE.list });
  for (const job of page.items) rows.set(job.id, jobRow(job));
  const head = ["name", session.admin ? "owner" : null, "type", "status", "latest run", "progress", "stage", "versions", "created"].filter(Boolean);
  table = el("table", { id: "jobs", class: "stack" }, el("tr", { class: "head" }, head.map((h) => el("th", {}, h))), [...rows.values()]);
  put(main, 
    el("h1", {}, "Jobs"),
    filterForm("jobs", ["type", "status", "run", "tag", "since", "until"]),
    table,
    rows.size ? null : emptyState("jobs", IMAGES, isFiltered(values)),
    pager("jobs", page),
  );
  for (const state of early.splice(0)) apply(state);
}

export async function jobView(id) {
  let job;
  try {
    job = await api(`/api/jobs/${ref(id)}`);
  } catch (error) {
    if (!(error instanceof ApiFailure && error.status === 404 && created.has(id))) throw error;
    // Just created in a cluster: the operator records it in a moment.
    put(main, el("h1", {}, "Created"), el("p", { class: "notice", id: "waiting-record" }, `Created ${id}; waiting for the operator to record it…`));
    timers.add(setTimeout(() => { if (location.hash.includes(id)) route(); }, 1000));
    return;
  }
  const run = job.latestRun;
  const bar = progressBar(run.progress, true, "progress of the latest run");
  const percent = el("span", { id: "percent" }, `${run.progress} %`);
  const status = el("dd", { id: "job-status" }, badge(job.status));
  const phase = el("dd", { id: "job-run" }, runBadge(run), run.version ? ` version ${run.version}` : "");
  const stage = el("dd", { id: "job-stage" }, run.stage || "-");
  const message = el("dd", { id: "job-message" }, run.message || "-");
  const why = el("dd", { id: "job-waits" }, waits(run) || "-");
  const versions = el("dd", { id: "job-versions" }, job.versions.map((v) => `v${v.version}`).join(", ") || "-");
  const cost = el("dd", { id: "job-cost" }, costOf(job));
  const actionStatus = el("div", { id: "action-status" });
  // What changes when the run ends: the actions (no Cancel run), what it made, its storage.
  const ending = el("div", { id: "job-ending" });
  const drawEnding = (record) => put(ending, recordActions(record, record.latestVersion, actionStatus), actionStatus, jobOutputs(record), usagePanel(record));
  drawEnding(job);
  // A run that ended before the page was drawn (an offline one may end within the create's answer).
  if (run.phase !== "Pending" && run.phase !== "Running") ending.dataset.ended = run.phase;
  put(main, 
    el("h1", {}, `${job.kind} ${job.namespace}/${job.name}`),
    el("div", { id: "job-progress" }, bar, " ", percent),
    el("dl", { class: "facts" },
      el("dt", {}, "status"), status, el("dt", {}, "latest run"), phase, el("dt", {}, "stage"), stage,
      el("dt", {}, "message"), message, el("dt", {}, "why"), why, el("dt", {}, "versions"), versions,
      session.admin ? [el("dt", {}, "owner"), el("dd", {}, job.owner)] : [],
      el("dt", {}, "cost"), cost,
      el("dt", {}, "outputs"), el("dd", {}, el("a", { href: outputsOf(job), id: "outputs" }, "view"))),
    ending);
  if (run.phase === "Pending" || run.phase === "Running") {
    const ended = async () => { // read the record as the run left it (still on this page)
      if (!location.hash.includes(ref(job.id))) return;
      const done = await api(`/api/jobs/${ref(job.id)}`).catch(() => null);
      if (!done || !location.hash.includes(ref(job.id))) return;
      versions.textContent = done.versions.map((v) => `v${v.version}`).join(", ") || "-";
      cost.textContent = costOf(done);
      drawEnding(done);
      ending.dataset.ended = done.latestRun.phase;
    };
    follow(job.id, (state) => {
      const latest = state.latestRun;
      setProgress(bar, latest.progress);
      percent.textContent = `${latest.progress} %`;
      put(status, badge(state.status));
      put(phase, runBadge(latest), latest.version ? ` version ${latest.version}` : "");
      stage.textContent = latest.stage || "-";
      message.textContent = latest.message || "-";
      put(why, waits(latest) || "-");
      versions.textContent = state.versionCount ? `v${state.latestVersion} (${state.versionCount})` : "-";
    }, ended);
  }
}

// On a job's page, once it has made something: its latest version's pictures, a link to each.
function jobOutputs(job) {
  const v = (job.versions || [])[job.versions.length - 1];
  if (!v) return null;
  const known = kindOf(job.kind) || {};
  const open = `${outputsOf(job)}${known.versionInLink ? `?version=${v.version}` : ""}`;
  const pictures = known.pictures
    ? (v.images || []).map((image, n) => el("a", { href: open, class: "output" }, el("img", { class: "thumb", src: thumbOf(job.id, image, v.version), alt: `image ${n + 1} of version ${v.version}`, width: 160 })))
    : [recordThumb(job)].filter(Boolean).map((t) => el("a", { href: open, class: "output" }, el("img", { class: "thumb", src: t.src, alt: `what version ${v.version} made`, width: 160 })));
  return el("section", { id: "job-outputs", class: "job-outputs" },
    el("h2", {}, `What version ${v.version} made`),
    pictures.length ? el("div", { class: "outputs" }, pictures) : null,
    el("p", {}, el("a", { href: open, id: "job-open" }, known.opens || "Open it")));
}

// Where a record's outputs are: a LoraEvaluation's on its own page (its score and grid, which are
// its LoRA version's files).
function outputsOf(job) {
  return `#/${linkOf(job.kind)}/${ref(job.id)}`;
}
