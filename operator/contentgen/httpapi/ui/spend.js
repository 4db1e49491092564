// The spend and budgets view.

import { api } from "./api.js";
import { el, put } from "./dom.js";
import { filterForm, filterValues } from "./filters.js";
import { usd } from "./format.js";
import { main, session } from "./state.js";

function thisMonth() {
  return new Date().toISOString().slice(0, 7);
}

function meter(spent, limit, label) {
  const fraction = limit ? Math.min(1, spent / limit) : 0;
  const fill = el("div", {});
  fill.style.width = `${(fraction * 100).toFixed(1)}%`;
  const state = limit && spent >= limit ? "meter over" : limit && spent >= 0.8 * limit ? "meter near" : "meter";
  return el("div", { class: state, role: "meter", "aria-valuenow": spent.toFixed(4), "aria-valuemax": limit || 0, "aria-label": label }, fill);
}

function spendTable(id, title, entries) {
  if (!entries.length) return null;
  const top = Math.max(...entries.map(([, v]) => v), 0.000001);
  return [el("h2", {}, title), el("table", { id, class: "stack" },
    entries.map(([key, value]) => el("tr", { "data-key": key },
      el("td", { "data-label": title.split(" ").pop() }, key),
      el("td", { "data-label": "USD" }, usd(value)),
      el("td", {}, meter(value, top, `${key}: ${usd(value)}`)))))];
}

export async function spend() {
  const values = filterValues();
  const [stats, budget] = await Promise.all([api("/api/assets/stats", { owner: values.owner }), api("/ui/budget")]);
  const month = thisMonth();
  const monthSpend = stats.spend.byMonth[month] || 0;
  const owners = await Promise.all(budget.owners
    .filter((b) => !values.owner || b.owner === values.owner)
    .map(async (b) => {
      const own = budget.owners.length === 1 && !session.admin ? stats : await api("/api/assets/stats", { owner: b.owner }).catch(() => null);
      return { ...b, spent: own ? (own.spend.byMonth[month] || 0) : 0 };
    }));
  const budgets = owners.map((b) => el("tr", { "data-owner": b.owner },
    el("td", { "data-label": "owner" }, b.owner),
    el("td", { "data-label": month }, usd(b.spent)),
    el("td", { "data-label": "budget" }, b.monthlyUsd === null ? "no limit" : `${usd(b.monthlyUsd)} (${b.source})`),
    el("td", {}, b.monthlyUsd === null ? "" : [meter(b.spent, b.monthlyUsd, `${b.owner}'s budget spent`),
      el("span", { class: "meta" }, b.spent >= b.monthlyUsd ? "spent: new runs wait (BudgetExceeded) until next month or a higher budget" : `${usd(b.monthlyUsd - b.spent)} left`)])));
  const namespaceLimits = Object.entries(budget.namespaces);
  put(main, 
    el("h1", {}, "Spend and budgets"),
    session.admin ? filterForm("spend", []) : null,
    el("div", { class: "tiles", id: "spend-tiles" },
      el("div", { class: "tile", id: "tile-month" }, el("div", { class: "meta" }, `Provider spend in ${month}`), el("div", { class: "value" }, usd(monthSpend))),
      el("div", { class: "tile", id: "tile-total" }, el("div", { class: "meta" }, "Provider spend, all time"), el("div", { class: "value" }, usd(stats.spend.totalUsd))),
      el("div", { class: "tile", id: "tile-storage" }, el("div", { class: "meta" }, `Storage: ${stats.totalGB.toFixed(3)} GiB`), el("div", { class: "value" }, usd(stats.estimatedMonthlyCost), el("span", { class: "unit" }, " a month")),
        el("div", { class: "meta" }, `at $${stats.pricePerGbMonth}/GiB-month`)),
      el("div", { class: "tile", id: "tile-records" }, el("div", { class: "meta" }, "Records (versions)"), el("div", { class: "value" }, `${stats.totalJobs} (${stats.totalVersions})`),
        el("div", { class: "meta" }, Object.entries(stats.byStatus).map(([k, v]) => `${v} ${k}`).join(", ")))),
    el("h2", {}, "Monthly budgets"),
    owners.length ? el("table", { id: "budgets", class: "stack" },
      el("tr", { class: "head" }, ["owner", `spent in ${month}`, "budget", ""].map((h) => el("th", {}, h))), budgets) : el("p", { class: "empty" }, "No owner budgets apply."),
    el("p", { class: "meta", id: "namespace-budgets" },
      budget.namespaceMonthlyUsd !== null || namespaceLimits.length
        ? `Namespace budgets: ${budget.namespaceMonthlyUsd !== null ? `${usd(budget.namespaceMonthlyUsd)} each` : "none by default"}${namespaceLimits.length ? `; ${namespaceLimits.map(([k, v]) => `${k} ${usd(v)}`).join(", ")}` : ""}. `
        : "No namespace budgets are set in the chart. ",
      "A namespace's own contentgen.io/budget annotation is enforced by the operator too; a run over budget waits Pending with the reason BudgetExceeded."),
    spendTable("spend-by-month", "Spend by month", Object.entries(stats.spend.byMonth).sort().reverse()),
    spendTable("spend-by-type", "Spend by type", Object.entries(stats.spend.byType)),
    session.admin ? spendTable("spend-by-owner", "Spend by owner", Object.entries(stats.spend.byOwner).sort((a, b) => b[1] - a[1])) : null,
    stats.spend.totalUsd ? null : el("p", { class: "empty" }, "Nothing has cost anything yet (offline runs are free)."),
  );
}
