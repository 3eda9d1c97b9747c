// The panel: the patients on one of my teams with what a nurse scans first, a page at a time
// (GET /care-teams/{id}/panel?sort=&show=&search=&page=&page_size=). The API sorts, filters
// and searches the whole panel; the page asks only for the rows it shows, and only those
// patients go in their access log.
import { call, get, query } from "./api.js";
import { clear, day, h, humanize, labelled, percent, select, when } from "./dom.js";

// The API's sort orders and filters (PanelSort and PanelFilter in the spec), with their labels.
const SORTS = {
  name: "Name",
  items: "Open items (most first)",
  score: "Last check-in score (highest first)",
  adherence7: "7-day adherence (lowest first)",
  adherence30: "30-day adherence (lowest first)",
  appointment: "Next appointment (soonest first)",
  discharge: "Days since discharge (fewest first)",
};
const SHOW = {
  all: "Everyone",
  open: "With open items",
  urgent: "With urgent items",
  low: "Adherence under 80 % (30 days)",
  discharged: "Discharged in the last 30 days",
};
const PAGE_SIZE = 100; // the API's largest page
const TYPING_MS = 250; // a search goes to the server once typing pauses this long

export async function showPanel(main) {
  document.title = "Panel · Care console";
  const heading = h("h1", { tabindex: "-1" }, "Panel");
  main.append(heading);
  const teams = await get("/care-teams");
  if (!teams.length) {
    main.append(h("p", { class: "summary" }, "You are not on any care team, so there is nobody on your panel."));
    return;
  }
  // asked: the latest request; an older one's answer arriving after it is dropped.
  const state = { team: teams[0].id, sort: "items", show: "all", search: "", shown: 0, pages: 0, panelSize: null, asked: 0 };
  const team = select("team", teams.map((t) => [t.id, `${t.name} (${t.organization})`]), state.team);
  const search = h("input", { type: "search", name: "search", autocomplete: "off", maxlength: "200" });
  const sort = select("sort", Object.entries(SORTS), state.sort);
  const show = select("show", Object.entries(SHOW), state.show);
  const summary = h("p", { class: "summary", "aria-live": "polite" });
  const body = h("tbody");
  const more = h("div", { class: "more" });
  const table = h(
    "table",
    { class: "panel", "aria-busy": "false" },
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

  /** The first page for the current choices, or (`next`) the page after those shown. */
  async function load(next) {
    const asked = ++state.asked;
    const page = next ? state.pages + 1 : 1;
    const needle = state.search.trim();
    table.setAttribute("aria-busy", "true");
    if (!next) summary.textContent = "Loading…";
    let answer;
    try {
      answer = await call("GET", query(`/care-teams/${state.team}/panel`, {
        sort: state.sort, show: state.show, search: needle, page, page_size: PAGE_SIZE,
      }));
    } finally {
      if (asked === state.asked) table.setAttribute("aria-busy", "false");
    }
    if (asked !== state.asked) return;
    const { data, pagination } = answer;
    const total = pagination ? pagination.total : data.length;
    const filtered = state.show !== "all" || needle !== "";
    if (!filtered) state.panelSize = total;
    const fragment = document.createDocumentFragment();
    for (const r of data) fragment.append(row(r));
    if (next) body.append(fragment);
    else clear(body).append(fragment);
    state.pages = page;
    state.shown = (next ? state.shown : 0) + data.length;
    const ofPanel = state.panelSize === null ? "" : ` (${state.panelSize} on the panel)`;
    summary.textContent = filtered
      ? `Showing ${state.shown} of ${total} matching${ofPanel}.`
      : `Showing ${state.shown} of ${total} patients.`;
    clear(more);
    if (total > state.shown) {
      more.append(h("button", { type: "button", class: "secondary", onClick: () => load(true) },
        `Show ${Math.min(PAGE_SIZE, total - state.shown)} more`));
    }
  }

  let typing = null;
  team.addEventListener("change", () => { state.team = Number(team.value); state.panelSize = null; load(false); });
  sort.addEventListener("change", () => { state.sort = sort.value; load(false); });
  show.addEventListener("change", () => { state.show = show.value; load(false); });
  search.addEventListener("input", () => {
    state.search = search.value;
    window.clearTimeout(typing);
    typing = window.setTimeout(() => load(false), TYPING_MS);
  });
  await load(false);
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
