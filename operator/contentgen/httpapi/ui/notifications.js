// The notifications view: the webhook delivery log (docs/notifications.md).

import { api, ref, send } from "./api.js";
import { el, notice, put } from "./dom.js";
import { filterValues } from "./filters.js";
import { when } from "./format.js";
import { linkOf } from "./kinds.js";
import { badge } from "./parts.js";
import { config, main, session } from "./state.js";

const DELIVERY_STATUSES = ["pending", "retrying", "delivered", "failed", "disabled"];
const LOGGED_ATTEMPTS = 20; // the API shows a delivery's newest 20 attempts

// A receiver's answer code as a chip; 0: no answer (the attempt's error says why).
function answerCode(a) {
  const ok = a.code >= 200 && a.code < 300;
  return el("span", { class: `code ${ok ? "ok" : "bad"}`, "data-code": a.code }, a.code ? String(a.code) : "no answer");
}

// What the receiver answered (its first bytes), or why there was no answer. Receivers write it:
// it is text, never HTML.
function answerText(a, short) {
  const text = a.code ? a.answer : (a.error || a.answer);
  if (!text) return "";
  return short && text.length > 100 ? `${text.slice(0, 100)}…` : text;
}

function eventName(type) {
  return (type || "").replace(/^io\.contentgen\./, "");
}

function attemptsTable(d) {
  if (!d.attempts.length) return el("p", { class: "meta" }, "No attempt yet.");
  return el("table", { class: "attempts stack" },
    el("tr", { class: "head" }, ["attempt", "at", "code", "answer", "error"].map((h) => el("th", {}, h))),
    d.attempts.map((a) => el("tr", { "data-attempt": a.attempt },
      el("td", { "data-label": "attempt" }, a.attempt ? String(a.attempt) : "given up"),
      el("td", { "data-label": "at" }, when(a.at)),
      el("td", { "data-label": "code" }, answerCode(a)),
      el("td", { "data-label": "answer" }, a.answer ? el("pre", { class: "answer" }, a.answer) : "-"),
      el("td", { "data-label": "error" }, a.error || "-"))));
}

// Send the event again (after fixing a receiver): in a cluster the API sets the Notification's
// annotation contentgen.io/replay and the operator sends it; on a laptop the delivery waits again in
// the local catalog for the next `contentgen run` (or `contentgen notifications send`). An API with
// neither (creates off) offers the kubectl command instead of a button that could not work.
function replayButton(d) {
  const where = `${d.notification.namespace}/${d.notification.name}`;
  if (config.create === "off") {
    return el("div", { class: "delivery-actions" },
      el("p", { class: "meta replay-elsewhere" }, "To send it again, in its cluster: ",
        el("code", {}, `kubectl annotate -n ${d.notification.namespace} notification/${d.notification.name} contentgen.io/replay=${d.eventId} --overwrite`)));
  }
  const status = el("div", { class: "replay-status" });
  const button = el("button", { type: "button", class: "replay" }, "Send again");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const asked = await send("POST", `/api/notifications/deliveries/${encodeURIComponent(d.id)}/replay`);
      notice(status, asked.message, false);
    } catch (error) {
      notice(status, error.message || String(error), true);
    } finally {
      button.disabled = false;
    }
  });
  const how = config.create === "local"
    ? el("span", { class: "meta" }, " sent by the next contentgen run on this machine, or at once by ", el("code", {}, `contentgen notifications send ${where}`))
    : el("span", { class: "meta" }, " the operator sends it");
  return el("div", { class: "delivery-actions" }, button, how, status);
}

// A delivery's row and the row under it that a click opens: every attempt logged.
function deliveryRows(d, columns) {
  const last = d.attempts[d.attempts.length - 1];
  const resource = `${d.resource.kind || "?"}/${d.resource.name || "?"}`;
  const toggle = el("button", { type: "button", class: "expand", "aria-expanded": "false", "aria-label": `Attempts of ${eventName(d.type)} (${resource})` }, "▸");
  const logged = d.attemptCount > d.attempts.length || d.replays ? ` (the newest ${LOGGED_ATTEMPTS} are kept)` : "";
  const detail = el("tr", { class: "delivery-detail", "data-for": d.id, hidden: true },
    el("td", { colspan: columns },
      el("dl", { class: "facts" },
        el("dt", {}, "event"), el("dd", {}, el("code", {}, d.eventId), " ", d.type),
        el("dt", {}, "resource"), el("dd", {}, resource, d.resource.uid ? el("span", { class: "meta" }, ` uid ${d.resource.uid}`) : ""),
        el("dt", {}, "attempts"), el("dd", {}, `${d.attempts.length} logged${logged}`, d.replays ? `, sent again ${d.replays}×` : "")),
      attemptsTable(d),
      replayButton(d)));
  const flip = () => {
    const open = detail.hidden;
    detail.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    toggle.textContent = open ? "▾" : "▸";
  };
  toggle.addEventListener("click", flip);
  const page = linkOf(d.resource.kind);
  const link = d.resource.uid && page ? el("a", { href: `#/${page}/${ref(d.resource.uid)}` }, resource) : resource;
  const row = el("tr", { class: "delivery", "data-id": d.id, "data-status": d.status, "data-event": d.eventId },
    el("td", { class: "toggle" }, toggle),
    el("td", { "data-label": "event" }, el("span", { title: d.type }, eventName(d.type))),
    el("td", { "data-label": "resource" }, link),
    session.admin ? el("td", { "data-label": "owner", class: "owner" }, d.owner) : null,
    el("td", { "data-label": "status" }, badge(d.status)),
    el("td", { "data-label": "attempts", class: "attempt-count" }, String(d.attemptCount)),
    el("td", { "data-label": "created" }, when(d.createdAt)),
    el("td", { "data-label": "next attempt" }, d.nextAttemptAt ? when(d.nextAttemptAt) : "-"),
    el("td", { "data-label": "last answer", class: "last-answer" }, last ? [answerCode(last), " ", answerText(last, true)] : "none yet"));
  row.addEventListener("click", (event) => { if (!event.target.closest("a, button")) flip(); });
  return [row, detail];
}

function notificationsEmpty() {
  return el("div", { class: "empty", id: "empty" },
    el("p", {}, "No webhook deliveries yet."),
    el("p", {}, "A Notification is a resource in a namespace that sends the events of your resources there (succeeded, failed, likenessPoor, budgetReached, queued) to a URL of yours as signed webhooks, retried until the receiver answers. Every delivery shows here with its attempts and the receiver's answers."),
    el("p", {}, "To make one, apply a Notification and its Secret: see ", el("code", {}, "docs/notifications.md"),
      " and ", el("a", { href: "/docs#/notifications", id: "notifications-docs" }, "the API reference"),
      "."),
    config.create === "local"
      ? el("p", { id: "notifications-laptop" }, "On this machine: ", el("code", {}, "contentgen run examples/notification.yaml"),
        " keeps one, and the runs from then on send it their events; ", el("code", {}, "contentgen notifications receive"),
        " is a receiver to try them, and ", el("code", {}, "contentgen notifications list"), " shows each one's state.")
      : null);
}

// Deliveries newest first, grouped by Notification; filters: a Notification, a status.
export async function notificationsView() {
  const values = filterValues();
  const [first, second] = (values.notification || "").split("/");
  const [namespace, name] = second === undefined ? [undefined, first] : [first, second];
  const filtered = Boolean(values.notification || values.status);
  const [found, all] = await Promise.all([
    api("/api/notifications/deliveries", { namespace, notification: name, status: values.status, limit: 200 }),
    filtered ? api("/api/notifications/deliveries", { limit: 200 }) : null,
  ]);
  const known = [...new Set((all || found).items.map((d) => `${d.notification.namespace}/${d.notification.name}`))].sort();
  if (values.notification && !known.includes(values.notification)) known.push(values.notification);
  const notificationSelect = el("select", { name: "notification", id: "filter-notification" }, el("option", { value: "" }, "every Notification"),
    known.map((n) => el("option", { value: n, selected: values.notification === n }, n)));
  const statusSelect = el("select", { name: "status", id: "filter-delivery-status" }, el("option", { value: "" }, "any status"),
    DELIVERY_STATUSES.map((s) => el("option", { value: s, selected: values.status === s }, s)));
  const form = el("form", { class: "filters", id: "filters" },
    el("label", {}, "notification", notificationSelect), el("label", {}, "status", statusSelect), el("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    for (const [key, value] of new FormData(form)) if (value) query.set(key, value);
    location.hash = `#/notifications${query.toString() ? "?" + query : ""}`;
  });
  const groups = new Map(); // newest first: a group where its newest delivery is
  for (const d of found.items) {
    const key = `${d.notification.namespace}/${d.notification.name}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(d);
  }
  const head = ["", "event", "resource", session.admin ? "owner" : null, "status", "attempts", "created", "next attempt", "last answer"].filter((h) => h !== null);
  const sections = [...groups].map(([key, items]) => {
    const counts = DELIVERY_STATUSES.filter((s) => items.some((d) => d.status === s))
      .map((s) => el("span", { class: `badge status-${s}` }, `${items.filter((d) => d.status === s).length} ${s}`));
    return el("section", { class: "notification-group", "data-notification": key },
      el("h2", {}, el("a", { href: `#/notifications?${new URLSearchParams({ notification: key })}` }, key), " ", counts),
      el("table", { class: "deliveries stack" }, el("tr", { class: "head" }, head.map((h) => el("th", {}, h))),
        items.flatMap((d) => deliveryRows(d, head.length))));
  });
  put(main,
    el("h1", {}, "Notifications"),
    el("p", { class: "meta" }, "Webhook deliveries of your resources' events, newest first, by Notification; a row opens to every attempt (docs/notifications.md)."),
    known.length ? form : null,
    sections.length ? sections
      : filtered && known.length ? el("p", { class: "empty", id: "empty" }, "No deliveries match these filters. ", el("a", { href: "#/notifications" }, "Clear the filters"))
        : notificationsEmpty(),
    found.items.length >= 200 ? el("p", { class: "meta" }, "The newest 200 are shown; filter by Notification or status for others.") : null);
}
