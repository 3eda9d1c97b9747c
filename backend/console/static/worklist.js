// The worklist: urgent first, then oldest (the API's order); filter by kind, team and
// status; acknowledge, assign and resolve with a note; each item's trail. New items are
// fetched every config.poll_seconds without a reload.
import { call, get, post, query } from "./api.js";
import { announce, clear, h, humanize, labelled, select, timeEl, when } from "./dom.js";

const STATUSES = [
  ["unresolved", "Open and acknowledged"],
  ["open", "Open"],
  ["acknowledged", "Acknowledged"],
  ["resolved", "Resolved"],
];
const PAGE_SIZE = 100;

export async function showWorklist(main, ctx) {
  document.title = "Worklist · Care console";
  const teams = await get("/care-teams");
  // The kinds the API knows (config.json: the tuple its `kind` filter and the spec's
  // WorkItemKind come from), so a new kind shows here without a change to this file.
  const kinds = ctx.config?.work_item_kinds || [];
  const state = { kind: "", team_id: "", status: "unresolved", pages: 1, seen: new Set(), items: [] };
  const params = new URLSearchParams(window.location.search);
  if (kinds.includes(params.get("kind"))) state.kind = params.get("kind");

  const kind = select("kind", [["", "All kinds"], ...kinds.map((k) => [k, humanize(k)])], state.kind);
  const team = select("team_id", [["", "All my teams"], ...teams.map((t) => [t.id, t.name])], "");
  const status = select("status", STATUSES, state.status);
  const summary = h("p", { class: "summary", "aria-live": "polite" });
  const list = h("ol", { class: "items", "aria-label": "Work items" });
  const more = h("div", { class: "more" });
  const fresh = h("div", { class: "fresh" });

  const filters = h(
    "form",
    { class: "filters", "aria-label": "Filter the worklist", onSubmit: (e) => e.preventDefault() },
    h("div", { class: "field" }, labelled("Kind", kind)),
    h("div", { class: "field" }, labelled("Team", team)),
    h("div", { class: "field" }, labelled("Status", status)),
  );
  for (const control of [kind, team, status]) {
    control.addEventListener("change", () => {
      state[control.name] = control.value;
      state.pages = 1;
      refresh(true);
    });
  }

  main.append(h("h1", { tabindex: "-1" }, "Worklist"), filters, fresh, summary, list, more);
  if (!teams.length) {
    summary.textContent = "You are not on any care team, so there is nothing for you here.";
    return;
  }

  async function load() {
    const items = [];
    let total = 0;
    for (let page = 1; page <= state.pages; page += 1) {
      const { data, pagination } = await call(
        "GET",
        query("/worklist", { kind: state.kind, team_id: state.team_id, status: state.status, page, page_size: PAGE_SIZE }),
      );
      items.push(...data);
      total = pagination ? pagination.total : data.length;
      if (!pagination || page >= pagination.total_pages) break;
    }
    return { items, total };
  }

  function busy() {
    // Someone typing a note or choosing a member: do not pull the list from under them.
    return list.querySelector("form") !== null;
  }

  async function refresh(userAsked) {
    const { items, total } = await load();
    const newUrgent = items.filter((i) => i.urgent && state.seen.size && !state.seen.has(i.id));
    const changed = items.map((i) => `${i.id}:${i.status}:${i.updated_at}`).join() !==
      state.items.map((i) => `${i.id}:${i.status}:${i.updated_at}`).join();
    for (const i of items) state.seen.add(i.id);
    if (newUrgent.length) {
      announce(`${newUrgent.length} new urgent item${newUrgent.length > 1 ? "s" : ""}: ${newUrgent.map((i) => i.title).join("; ")}`);
    }
    if (!userAsked && !changed) {
      return;
    }
    if (!userAsked && busy()) {
      clear(fresh).append(
        h("p", { class: "notice" }, "The worklist changed while you were working. ",
          h("button", { type: "button", onClick: () => { clear(fresh); draw(items, total, newUrgent); } }, "Show the new list")),
      );
      state.pending = { items, total };
      return;
    }
    draw(items, total, newUrgent);
  }

  function draw(items, total, highlight) {
    clear(fresh);
    state.items = items;
    const urgent = items.filter((i) => i.urgent).length;
    summary.textContent = total
      ? `${total} item${total === 1 ? "" : "s"}${urgent ? `, ${urgent} urgent shown` : ""}. Updated ${when(new Date().toISOString())}.`
      : "Nothing to do here.";
    const hot = new Set(highlight.map((i) => i.id));
    clear(list).append(...items.map((item) => renderItem(item, hot.has(item.id))));
    clear(more);
    if (items.length < total) {
      more.append(
        h("button", { type: "button", class: "secondary", onClick: () => { state.pages += 1; refresh(true); } },
          `Show more (${total - items.length} more)`),
      );
    }
  }

  function renderItem(item, isNew) {
    const li = h("li", { class: `item${item.urgent ? " urgent" : ""}${isNew ? " new" : ""}`, "data-item-id": item.id });
    const area = h("div", { class: "item-more" });
    const actions = h("div", { class: "actions" });
    const patientLink = h("a", { href: `/console/patients/${item.patient.id}`, "data-nav": "" }, item.patient.name);
    li.append(
      h("div", { class: "item-head" },
        item.urgent ? h("span", { class: "badge urgent-badge" }, "Urgent") : null,
        h("h2", { class: "item-title" }, item.title),
      ),
      h("p", { class: "meta" },
        patientLink, " · ", humanize(item.kind), " · opened ", timeEl(item.opened_at), " · ",
        h("span", { class: `status status-${item.status}` }, humanize(item.status)),
        item.assigned_to ? ` · assigned to ${item.assigned_to.name}` : "",
        item.acknowledged_by ? ` · acknowledged by ${item.acknowledged_by.name}` : "",
      ),
      actions,
      area,
    );
    const label = (verb) => `${verb}: ${item.title} (${item.patient.name})`;
    if (item.status === "open") {
      actions.append(h("button", { type: "button", "aria-label": label("Acknowledge"), onClick: () => act(item, "acknowledge", {}, "Acknowledged") }, "Acknowledge"));
    }
    if (item.status !== "resolved") {
      actions.append(
        h("button", { type: "button", class: "secondary", "aria-label": label("Assign"), onClick: () => assignForm(item, area) }, "Assign…"),
        h("button", { type: "button", class: "secondary", "aria-label": label("Resolve"), onClick: () => resolveForm(item, area) }, "Resolve…"),
      );
    }
    const trailButton = h("button", { type: "button", class: "link", "aria-expanded": "false", "aria-label": label("Trail") }, "Trail");
    trailButton.addEventListener("click", () => toggleTrail(item, area, trailButton));
    actions.append(trailButton);
    return li;
  }

  async function act(item, verb, body, done) {
    try {
      await post(`/worklist/${item.id}/${verb}`, body);
      announce(`${done}: ${item.title}.`);
      await refresh(true);
      const again = list.querySelector(`[data-item-id="${item.id}"] .actions button`);
      (again || list.querySelector("button") || summary).focus?.();
    } catch (err) {
      announce(err.message);
      const li = list.querySelector(`[data-item-id="${item.id}"]`);
      if (li) li.append(h("p", { class: "error", role: "alert" }, err.message));
    }
  }

  function resolveForm(item, area) {
    const note = h("textarea", { name: "note", required: true, maxlength: "2000", rows: "3" });
    const form = h(
      "form",
      { class: "stack", onSubmit: (e) => { e.preventDefault(); act(item, "resolve", { note: note.value.trim() }, "Resolved"); } },
      h("div", { class: "field" }, labelled("What was done (required)", note)),
      h("div", { class: "row" },
        h("button", { type: "submit" }, "Resolve"),
        h("button", { type: "button", class: "secondary", onClick: () => clear(area) }, "Cancel")),
    );
    clear(area).append(form);
    note.focus();
  }

  async function assignForm(item, area) {
    const teamsOfPatient = await get(`/patients/${item.patient.id}/care-team`);
    const members = new Map();
    for (const t of teamsOfPatient) for (const m of t.members) members.set(m.user_id, `${m.name} (${humanize(m.role)}, ${t.name})`);
    const who = select("user_id", [...members.entries()], item.assigned_to ? item.assigned_to.id : "");
    const form = h(
      "form",
      { class: "stack", onSubmit: (e) => { e.preventDefault(); act(item, "assign", { user_id: Number(who.value) }, "Assigned"); } },
      h("div", { class: "field" }, labelled("Assign to", who)),
      h("div", { class: "row" },
        h("button", { type: "submit" }, "Assign"),
        h("button", { type: "button", class: "secondary", onClick: () => clear(area) }, "Cancel")),
    );
    clear(area).append(form);
    who.focus();
  }

  async function toggleTrail(item, area, button) {
    if (button.getAttribute("aria-expanded") === "true") {
      button.setAttribute("aria-expanded", "false");
      clear(area);
      return;
    }
    const detail = await get(`/worklist/${item.id}`);
    button.setAttribute("aria-expanded", "true");
    clear(area).append(
      h("h3", {}, "Trail"),
      h("ol", { class: "trail" },
        detail.events.map((e) =>
          h("li", {}, timeEl(e.at), " — ", humanize(e.action), " by ", e.by ? e.by.name : "the system", e.note ? h("q", {}, e.note) : null),
        ),
      ),
      evidence(detail.detail),
    );
  }

  await refresh(true);
  const timer = window.setInterval(() => refresh(false).catch(() => {}), (ctx.config?.poll_seconds || 30) * 1000);
  ctx.onLeave(() => window.clearInterval(timer));
}

function evidence(detail) {
  const entries = Object.entries(detail || {});
  if (!entries.length) return null;
  return h("details", { class: "evidence" },
    h("summary", {}, "Evidence"),
    h("dl", {}, entries.flatMap(([k, v]) => [h("dt", {}, humanize(k)), h("dd", {}, typeof v === "object" ? JSON.stringify(v) : String(v))])),
  );
}
