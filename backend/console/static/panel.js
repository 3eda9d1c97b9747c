// The panel: every patient on one of my teams with what a nurse scans first (one API call,
// GET /care-teams/{id}/panel); sorted, filtered and searched here in the page.
import { get } from "./api.js";
import { clear, day, h, humanize, labelled, percent, select, when } from "./dom.js";

const COLLATOR = new Intl.Collator("en", { sensitivity: "base" }); // one, not one per compare
const byName = (a, b) => COLLATOR.compare(a.display_name, b.display_name);
const SORTS = {
  name: ["Name", byName],
  items: ["Open items (most first)", (a, b) => b.urgent_items - a.urgent_items || b.open_items - a.open_items],
  score: ["Last check-in score (highest first)", (a, b) => score(b) - score(a)],
  adherence7: ["7-day adherence (lowest first)", (a, b) => rate(a.adherence_7) - rate(b.adherence_7)],
  adherence30: ["30-day adherence (lowest first)", (a, b) => rate(a.adherence_30) - rate(b.adherence_30)],
  appointment: ["Next appointment (soonest first)", (a, b) => next(a) - next(b)],
  discharge: ["Days since discharge (fewest first)", (a, b) => since(a) - since(b)],
};
const SHOW = {
  all: ["Everyone", () => true],
  open: ["With open items", (r) => r.open_items > 0],
  urgent: ["With urgent items", (r) => r.urgent_items > 0],
  low: ["Adherence under 80 % (30 days)", (r) => rate(r.adherence_30) < 0.8],
  discharged: ["Discharged in the last 30 days", (r) => since(r) <= 30],
};

const STEP = 200; // rows drawn at a time: sorting and search cover every patient regardless
const score = (r) => (r.last_checkin && r.last_checkin.score !== null ? r.last_checkin.score : -1);
const rate = (t) => (t && t.dose_adherence !== null ? t.dose_adherence : 2);
const next = (r) => (r.next_appointment ? Date.parse(r.next_appointment.start) : Infinity);
const since = (r) => (r.days_since_discharge === null ? Infinity : r.days_since_discharge);

export async function showPanel(main) {
  document.title = "Panel · Care console";
  const heading = h("h1", { tabindex: "-1" }, "Panel");
  main.append(heading);
  const teams = await get("/care-teams");
  if (!teams.length) {
    main.append(h("p", { class: "summary" }, "You are not on any care team, so there is nobody on your panel."));
    return;
  }
  const state = { team: teams[0].id, sort: "items", show: "all", search: "", rows: [], limit: STEP };
  const team = select("team", teams.map((t) => [t.id, `${t.name} (${t.organization})`]), state.team);
  const search = h("input", { type: "search", name: "search", autocomplete: "off" });
  const sort = select("sort", Object.entries(SORTS).map(([k, [label]]) => [k, label]), state.sort);
  const show = select("show", Object.entries(SHOW).map(([k, [label]]) => [k, label]), state.show);
  const summary = h("p", { class: "summary", "aria-live": "polite" });
  const body = h("tbody");
  const more = h("div", { class: "more" });
  const table = h(
    "table",
    { class: "panel" },
    h("caption", { class: "visually-hidden" }, "Patients on the panel"),
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "Patient"),
      h("th", { scope: "col", class: "num" }, "Open items"),
      h("th", { scope: "col" }, "Last check-in"),
      h("th", { scope: "col", class: "num" }, "Adherence 7 days"),
      h("th", { scope: "col", class: "num" }, "Adherence 30 days"),
      h("th", { scope: "col" }, "Next appointment"),
      h("th", { scope: "col", class: "num" }, "Days since discharge"),
    )),
    body,
  );
  main.append(
    h("form", { class: "filters", "aria-label": "Sort and filter the panel", onSubmit: (e) => e.preventDefault() },
      h("div", { class: "field" }, labelled("Team", team)),
      h("div", { class: "field" }, labelled("Search by name", search)),
      h("div", { class: "field" }, labelled("Show", show)),
      h("div", { class: "field" }, labelled("Sort by", sort)),
    ),
    summary,
    table,
    more,
  );

  async function load() {
    summary.textContent = "Loading…";
    state.rows = await get(`/care-teams/${state.team}/panel`);
    for (const r of state.rows) r.key = r.display_name.toLocaleLowerCase();
    draw();
  }

  function draw() {
    const needle = state.search.trim().toLocaleLowerCase();
    const rows = state.rows
      .filter(SHOW[state.show][1])
      .filter((r) => !needle || r.key.includes(needle))
      .sort((a, b) => SORTS[state.sort][1](a, b) || byName(a, b));
    const shown = rows.slice(0, state.limit);
    summary.textContent = rows.length === state.rows.length
      ? `Showing ${shown.length} of ${state.rows.length} patients.`
      : `Showing ${shown.length} of ${rows.length} matching (${state.rows.length} on the panel).`;
    // Each row is built once per load; sorting and filtering only reorder them.
    const fragment = document.createDocumentFragment();
    for (const r of shown) {
      if (!r.element) r.element = row(r);
      fragment.append(r.element);
    }
    clear(body).append(fragment);
    clear(more);
    if (rows.length > shown.length) {
      more.append(h("button", { type: "button", class: "secondary", onClick: () => { state.limit += STEP; draw(); } },
        `Show ${Math.min(STEP, rows.length - shown.length)} more`));
    }
  }

  const again = () => { state.limit = STEP; draw(); };
  team.addEventListener("change", () => { state.team = Number(team.value); state.limit = STEP; load(); });
  sort.addEventListener("change", () => { state.sort = sort.value; again(); });
  show.addEventListener("change", () => { state.show = show.value; again(); });
  search.addEventListener("input", () => { state.search = search.value; again(); });
  await load();
}

function row(r) {
  const c = r.last_checkin;
  const appt = r.next_appointment;
  return h("tr", { "data-patient-id": r.patient_id },
    h("th", { scope: "row" }, h("a", { href: `/console/patients/${r.patient_id}`, "data-nav": "" }, r.display_name)),
    h("td", { class: "num" }, String(r.open_items), r.urgent_items ? h("span", { class: "badge urgent-badge" }, ` ${r.urgent_items} urgent`) : null),
    h("td", {}, c
      ? [`${c.template} ${c.score ?? ""}`.trim(), c.band ? [" ", h("span", { class: `band-${c.band}` }, humanize(c.band))] : null,
        h("br"), h("span", { class: "muted" }, day(c.at))]
      : h("span", { class: "muted" }, "none")),
    h("td", { class: "num" }, percent(r.adherence_7 && r.adherence_7.dose_adherence)),
    h("td", { class: "num" }, percent(r.adherence_30 && r.adherence_30.dose_adherence), trend(r)),
    h("td", {}, appt ? [when(appt.start, appt.time_zone), h("br"), h("span", { class: "muted" }, appt.title)] : h("span", { class: "muted" }, "none booked")),
    h("td", { class: "num" }, r.days_since_discharge === null ? "—" : String(r.days_since_discharge)),
  );
}

function trend(r) {
  const week = r.adherence_7 && r.adherence_7.dose_adherence;
  const month = r.adherence_30 && r.adherence_30.dose_adherence;
  if (week === null || week === undefined || month === null || month === undefined) return null;
  const points = Math.round((week - month) * 100);
  if (Math.abs(points) < 5) return null;
  const text = points < 0 ? `▼ ${-points} points lower this week` : `▲ ${points} points higher this week`;
  return [h("br"), h("span", { class: points < 0 ? "trend-down" : "trend-up" }, text)];
}
