// The patient chart: who they are, what is coming up, medicines with their schedules in
// words, adherence and check-in charts, the care plan, appointments, discharges with their
// checklist, the message threads and the care team. Each part asks the API on its own, so a
// part the policy does not allow (403) says so while the rest shows.
import { all, ApiError, call, get, post, query } from "./api.js";
import { announce, clear, day, h, humanize, labelled, percent, select, timeEl, when } from "./dom.js";
import { barChart, dataTable, lineChart } from "./charts.js";
import { list, timingWords } from "./timing.js";

const WEEKDAYS = [["mon", "Monday"], ["tue", "Tuesday"], ["wed", "Wednesday"], ["thu", "Thursday"], ["fri", "Friday"], ["sat", "Saturday"], ["sun", "Sunday"]];

export async function showChart(main, id) {
  let patient;
  try {
    patient = await get(`/patients/${id}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return notFound(main);
    throw err;
  }
  document.title = `${patient.display_name} · Care console`;
  const zone = patient.time_zone;
  main.append(
    h("p", { class: "crumbs" }, h("a", { href: "/console/panel", "data-nav": "" }, "Panel"), " › chart"),
    h("h1", { tabindex: "-1" }, patient.display_name),
    h("p", { class: "facts" },
      patient.birth_date ? `Born ${day(patient.birth_date)} · ` : "",
      `Language ${patient.language} · Time zone ${zone}`,
      patient.managed ? " · Managed by a caregiver (no own login)" : "",
    ),
    patient.communication_needs ? h("p", { class: "notice" }, h("strong", {}, "Communication needs: "), patient.communication_needs) : null,
    patient.need_flags && patient.need_flags.length ? h("p", {}, patient.need_flags.map((f) => h("span", { class: "badge" }, humanize(f))), " ") : null,
  );
  const grid = h("div", { class: "grid" });
  main.append(grid);
  const ctx = { id, patient, zone, base: `/patients/${id}` };
  const parts = [
    ["Coming up", upcoming],
    ["Medicines", medicines],
    ["Adherence", adherenceCard],
    ["Check-ins", checkins],
    ["Care plan", carePlan],
    ["Appointments", appointments],
    ["Discharges", discharges],
    ["Messages", messages],
    ["Care team", careTeam],
  ];
  const cards = parts.map(([title, fill]) => {
    const body = h("div", { class: "card-body" }, h("p", { class: "muted" }, "Loading…"));
    const headingId = `card-${title.toLowerCase().replaceAll(" ", "-")}`;
    grid.append(h("section", { class: "card", "aria-labelledby": headingId }, h("h2", { id: headingId }, title), body));
    return { body, fill };
  });
  await Promise.all(cards.map(({ body, fill }) => fillCard(body, fill, ctx)));
}

async function fillCard(body, fill, ctx) {
  try {
    const content = await fill(ctx, body);
    clear(body).append(...[content].flat(Infinity).filter(Boolean));
  } catch (err) {
    const text = err instanceof ApiError && err.status === 403
      ? "Your role on the care team does not include this part."
      : err instanceof ApiError && err.status === 404
        ? "Nothing recorded yet."
        : err.message;
    clear(body).append(h("p", { class: "muted" }, text));
  }
}

function notFound(main) {
  document.title = "No such patient · Care console";
  main.append(
    h("h1", { tabindex: "-1" }, "No such patient"),
    h("p", {}, "There is no patient here that you may see. Patients appear on your panel when they are enrolled on one of your care teams."),
    h("p", {}, h("a", { href: "/console/panel", "data-nav": "" }, "Back to the panel")),
  );
}

function empty(text) {
  return h("p", { class: "muted" }, text);
}

async function refill(body, fill, ctx) {
  await fillCard(body, fill, ctx);
}

// --- Coming up: the next doses and the latest logged -----------------------------------

async function upcoming(ctx) {
  const meds = (await get(query(`${ctx.base}/medications`, { status: "active", page_size: 100 }))).filter((m) => m.timing);
  const next = (await Promise.all(meds.map(async (m) =>
    (await get(`${ctx.base}/medications/${m.id}/schedule`)).slice(0, 4).map((o) => ({ ...o, med: m }))))).flat();
  next.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  const doses = await get(query(`${ctx.base}/doses`, { page_size: 6 }));
  const names = new Map(meds.map((m) => [m.id, m.name]));
  return [
    h("h3", {}, "Next doses"),
    next.length
      // the instant in the patient's zone, as "Latest logged" shows it (a home-zone
      // medicine's local time is in another zone)
      ? h("ul", {}, next.slice(0, 6).map((o) => h("li", {}, when(o.at, ctx.zone), " — ", o.med.name)))
      : empty("No scheduled doses."),
    h("h3", {}, "Latest logged"),
    doses.length
      ? h("ul", {}, doses.map((d) => h("li", {}, when(d.taken_at || d.logged_at, ctx.zone), " — ", names.get(d.medication_id) || "a medicine", `: ${humanize(d.status)}${d.late ? " (late)" : ""}`)))
      : empty("No doses logged."),
  ];
}

// --- Medicines --------------------------------------------------------------------------

async function medicines(ctx) {
  const meds = await all(`${ctx.base}/medications`);
  if (!meds.length) return empty("No medicines.");
  return h("table", {},
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Medicine"), h("th", { scope: "col" }, "Schedule"), h("th", { scope: "col" }, "Status"))),
    h("tbody", {}, meds.map((m) => h("tr", {},
      h("th", { scope: "row" }, [m.name, m.strength].filter(Boolean).join(" "), h("br"), h("span", { class: "muted" }, `${m.dose_amount} ${m.form || ""}`.trim())),
      h("td", {}, timingWords(m.timing, m.as_needed), m.instructions ? [h("br"), h("span", { class: "muted" }, m.instructions)] : null),
      h("td", {}, humanize(m.status)),
    ))),
  );
}

// --- Adherence ---------------------------------------------------------------------------

async function adherenceCard(ctx) {
  const periods = [7, 30, 90];
  const [weekly, ...results] = await Promise.all([
    get(query(`${ctx.base}/adherence/weekly`, { weeks: 12 })),
    ...periods.map((days) => get(query(`${ctx.base}/adherence`, { days }))),
  ]);
  const bars = results.map((r, i) => ({ label: `${periods[i]} days`, value: r.overall.dose_adherence }));
  const weekLabel = (w) => new Date(`${w.week_start}T12:00:00Z`).toLocaleDateString("en-US", { month: "numeric", day: "numeric", timeZone: "UTC" });
  // Twelve dates do not fit under twelve narrow bars: every third one (all are in the table).
  const n = weekly.overall.length;
  const weeks = weekly.overall.map((w, i) => ({ label: (n - 1 - i) % 3 === 0 ? weekLabel(w) : "", value: w.dose_adherence }));
  const month = results[1];
  return [
    barChart(`Doses taken: ${bars.map((b) => `${b.label} ${percent(b.value)}`).join(", ")}`, bars),
    dataTable("Doses taken by period", ["Period", "Taken", "Scheduled", "Missed", "Adherence"],
      results.map((r, i) => [`${periods[i]} days`, String(r.overall.taken), String(r.overall.scheduled), String(r.overall.missed), percent(r.overall.dose_adherence)])),
    h("p", { class: "muted" }, "Share of due doses taken (the dashed line is 80 %)."),
    h("h3", {}, "Week by week (weeks start on Monday)"),
    barChart(`Doses taken in each of the last ${weeks.length} weeks`, weeks, { width: 420, values: false }),
    dataTable("Doses taken week by week", ["Week of", "Taken", "Scheduled", "Missed", "Adherence"],
      weekly.overall.map((w) => [w.week_start, String(w.taken), String(w.scheduled), String(w.missed), percent(w.dose_adherence)])),
    month.medications.length
      ? h("table", {},
        h("caption", {}, "Last 30 days by medicine"),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Medicine"), h("th", { scope: "col", class: "num" }, "Taken"), h("th", { scope: "col", class: "num" }, "Missed"), h("th", { scope: "col", class: "num" }, "Adherence"))),
        h("tbody", {}, month.medications.map((m) => h("tr", {},
          h("th", { scope: "row" }, m.name), h("td", { class: "num" }, `${m.taken}/${m.scheduled}`), h("td", { class: "num" }, String(m.missed)), h("td", { class: "num" }, percent(m.dose_adherence))))))
      : null,
  ];
}

// --- Check-ins ---------------------------------------------------------------------------

async function checkins(ctx, body) {
  const responses = await all(`${ctx.base}/checkin-responses`, {}, 300);
  const schedules = await get(query(`${ctx.base}/checkin-schedules`, { page_size: 20 }));
  const out = [];
  const scored = new Map();
  for (const r of [...responses].reverse()) {
    if (r.score === null || r.score === undefined) continue;
    const key = templateValue(r.template_organization_id, r.template);  // two organizations' HF-DAILY are two
    if (!scored.has(key)) scored.set(key, []);
    scored.get(key).push(r);
  }
  for (const points of scored.values()) {
    const last = points[points.length - 1];
    const template = last.template;
    out.push(
      h("h3", {}, `${template} score over time`),
      lineChart(`${template} scores: ${points.map((p) => `${day(p.at)} ${p.score}`).join(", ")}`, points.map((p) => ({ at: p.at, score: p.score })), maxScore(template)),
      h("p", {}, `Latest: ${last.score}`, last.band ? [" — ", h("span", { class: `band-${last.band}` }, humanize(last.band))] : "", ` on ${day(last.at)}`),
    );
  }
  if (responses.length) out.push(await latestAnswers(responses[0]));
  else out.push(empty("No check-ins answered yet."));
  const active = schedules.filter((s) => s.status === "active");
  out.push(
    h("h3", {}, "Scheduled"),
    active.length
      ? h("ul", { class: "schedules" }, active.map((s) => h("li", {}, `${s.template}: ${timingWords(s.timing)}`, s.note ? h("span", { class: "muted" }, ` — ${s.note}`) : null)))
      : empty("Nothing scheduled."),
  );
  if (ctx.patient.my_permissions.includes("manage_checkins")) out.push(await scheduleForm(ctx, body));
  return out;
}

/** A template as one value: a built-in's code, or "organization:code" (codes have no ':'). */
function templateValue(organizationId, code) {
  return organizationId === null || organizationId === undefined ? code : `${organizationId}:${code}`;
}

function maxScore(template) {
  return { "PHQ-9": 27, "PHQ-2": 6, "GAD-7": 21 }[template];
}

async function latestAnswers(response) {
  let template = null;
  try {
    const owner = response.template_organization_id;
    template = await get(query(`/checkin-templates/${encodeURIComponent(response.template)}`, owner ? { organization_id: owner } : {}));
  } catch (err) {
    template = null;
  }
  const items = new Map((template ? template.items : []).map((i) => [i.code, i]));
  const rows = Object.entries(response.answers || {}).map(([code, answer]) => {
    const item = items.get(code);
    return h("tr", {}, h("th", { scope: "row" }, item ? item.text : code), h("td", {}, answerText(item, answer)));
  });
  return h("details", { class: "answers" },
    h("summary", {}, `Answers to the latest ${response.template} (${day(response.at)})`),
    response.flags && response.flags.length ? h("p", { class: "error" }, `Flags: ${response.flags.map(humanize).join(", ")}`) : null,
    h("table", {}, h("tbody", {}, rows)),
  );
}

function answerText(item, answer) {
  if (answer === null || answer === undefined) return "—";
  const options = item && item.answers ? new Map(item.answers.map((o) => [o.code, o.display])) : new Map();
  if (Array.isArray(answer)) return answer.map((a) => options.get(a) || String(a)).join(", ");
  if (typeof answer === "object") {
    if ("value" in answer) return `${answer.value} ${answer.unit || ""}`.trim();
    return JSON.stringify(answer);
  }
  return options.get(answer) || String(answer);
}

async function scheduleForm(ctx, body) {
  const templates = await get("/checkin-templates");
  const template = select("template", templates.map((t) => [templateValue(t.organization_id, t.code), `${t.code} — ${t.title}`]), "GAD-7");
  const repeat = select("repeat", [["now", "Once, now"], ["once", "Once, on the next…"], ["daily", "Every day"], ["weekly", "Every week on…"]], "once");
  const weekday = select("weekday", WEEKDAYS, "mon");
  const time = h("input", { type: "time", name: "time", value: "10:00", required: true });
  const note = h("input", { type: "text", name: "note", maxlength: "2000" });
  const error = h("p", { class: "error", role: "alert" });
  const form = h("form", {
    class: "stack",
    "aria-label": "Schedule a check-in",
    onSubmit: async (e) => {
      e.preventDefault();
      error.textContent = "";
      const [code, owner] = template.value.split(":").reverse();
      const payload = { template: code, timing: buildTiming(repeat.value, weekday.value, time.value) };
      if (owner) payload.template_organization_id = Number(owner);
      if (note.value.trim()) payload.note = note.value.trim();
      try {
        await post(`${ctx.base}/checkin-schedules`, payload);
        announce(`${code} scheduled: ${timingWords(payload.timing)}.`);
        await refill(body, checkins, ctx);
      } catch (err) {
        error.textContent = err.message;
      }
    },
  },
  h("h3", {}, "Schedule a check-in"),
  h("div", { class: "field" }, labelled("Template", template)),
  h("div", { class: "row" },
    h("div", { class: "field" }, labelled("When", repeat)),
    h("div", { class: "field" }, labelled("Day", weekday)),
    h("div", { class: "field" }, labelled(`Time (${ctx.zone})`, time))),
  h("div", { class: "field" }, labelled("Note for the patient (optional)", note)),
  h("button", { type: "submit" }, "Schedule"),
  error);
  return form;
}

/** The schedule builder's choice as a FHIR R4 Timing, in the patient's own wall clock. */
export function buildTiming(repeat, weekday, time) {
  const at = [`${time || "10:00"}:00`];
  if (repeat === "now") return { repeat: { count: 1 } };
  if (repeat === "daily") return { repeat: { frequency: 1, period: 1, periodUnit: "d", timeOfDay: at } };
  if (repeat === "weekly") return { repeat: { frequency: 1, period: 1, periodUnit: "wk", dayOfWeek: [weekday], timeOfDay: at } };
  return { repeat: { frequency: 1, period: 1, periodUnit: "d", dayOfWeek: [weekday], timeOfDay: at, count: 1 } };
}

// --- Care plan -----------------------------------------------------------------------------

async function carePlan(ctx, body) {
  const plan = await get(`${ctx.base}/care-plan`);
  const out = [
    h("h3", {}, plan.title),
    plan.instructions ? h("p", {}, plan.instructions) : null,
    plan.conditions.length ? h("p", {}, h("strong", {}, "Conditions: "), list(plan.conditions.map((c) => c.text))) : null,
    h("h3", {}, "Goals"),
    plan.goals.length
      ? h("ul", {}, plan.goals.map((g) => h("li", {}, g.description, g.due_date ? ` (by ${day(g.due_date)})` : "", ` — ${humanize(g.status)}`)))
      : empty("No goals."),
    h("h3", {}, "Activities"),
    plan.activities.length
      ? h("ul", { class: "activities" }, plan.activities.map((a) => h("li", {}, a.description, a.frequency ? `, ${a.frequency}` : "", a.responsible ? ` — ${responsibleText(a.responsible)}` : "", ` (${humanize(a.status)})`)))
      : empty("No activities."),
  ];
  if (ctx.patient.my_permissions.includes("edit_care_plan")) out.push(activityForm(ctx, body, plan));
  return out;
}

function responsibleText(r) {
  return r.name || humanize(r.kind);
}

function echoActivity(a) {
  const responsible = a.responsible ? { kind: a.responsible.kind } : undefined;
  if (responsible && a.responsible.user_id) responsible.user_id = a.responsible.user_id;
  const out = { id: a.id, description: a.description, status: a.status };
  if (a.frequency) out.frequency = a.frequency;
  if (responsible) out.responsible = responsible;
  return out;
}

function activityForm(ctx, body, plan) {
  const description = h("input", { type: "text", name: "description", required: true, maxlength: "500" });
  const frequency = h("input", { type: "text", name: "frequency", maxlength: "200", placeholder: "e.g. daily" });
  const who = select("responsible", [["patient", "The patient"], ["caregiver", "A caregiver"], ["care_team_member", "The care team"]], "patient");
  const error = h("p", { class: "error", role: "alert" });
  return h("form", {
    class: "stack",
    "aria-label": "Add a care-plan activity",
    onSubmit: async (e) => {
      e.preventDefault();
      error.textContent = "";
      try {
        const fresh = await call("GET", `${ctx.base}/care-plans/${plan.id}`);
        const activity = { description: description.value.trim(), responsible: { kind: who.value } };
        if (frequency.value.trim()) activity.frequency = frequency.value.trim();
        await call("PATCH", `${ctx.base}/care-plans/${plan.id}`,
          { activities: [...fresh.data.activities.map(echoActivity), activity] }, { "If-Match": fresh.etag });
        announce(`Activity added: ${activity.description}.`);
        await refill(body, carePlan, ctx);
      } catch (err) {
        error.textContent = err.message;
      }
    },
  },
  h("h3", {}, "Add an activity"),
  h("div", { class: "field" }, labelled("Activity", description)),
  h("div", { class: "row" },
    h("div", { class: "field" }, labelled("How often", frequency)),
    h("div", { class: "field" }, labelled("Who does it", who))),
  h("button", { type: "submit" }, "Add activity"),
  error);
}

// --- Appointments ----------------------------------------------------------------------

async function appointments(ctx) {
  const items = await all(`${ctx.base}/appointments`, { status: "booked" }, 50);
  if (!items.length) return empty("No appointments booked.");
  return h("ul", {}, items.map((a) => h("li", {},
    h("strong", {}, a.title), " — ", when(a.start, a.time_zone), ` (${humanize(a.type)}, ${humanize(a.status)})`,
    a.location ? h("span", { class: "muted" }, ` · ${a.location}`) : null)));
}

// --- Discharges --------------------------------------------------------------------------

async function discharges(ctx, body) {
  const items = await get(query(`${ctx.base}/discharges`, { page_size: 5 }));
  const out = items.length
    ? items.map((d) => h("div", { class: "discharge" },
      h("h3", {}, `${d.facility}, discharged ${day(d.discharged_at)}`),
      d.reason ? h("p", {}, d.reason) : null,
      d.medication_changes && d.medication_changes.length
        ? h("p", {}, h("strong", {}, "Medicine changes: "), list(d.medication_changes.map((c) => `${humanize(c.change)} ${c.name}${c.applied_at ? " (applied)" : ""}`)))
        : null,
      h("ul", { class: "checklist" }, d.tasks.map((t) => h("li", { class: `task-${t.status}` },
        h("span", { class: "badge" }, humanize(t.status)), " ", humanize(t.kind), t.day ? ` (day ${t.day})` : "", " — due ", when(t.due_at, ctx.zone))))))
    : [empty("No discharges recorded.")];
  if (ctx.patient.my_permissions.includes("manage_transitions")) out.push(dischargeForm(ctx, body));
  return out;
}

function dischargeForm(ctx, body) {
  const facility = h("input", { type: "text", name: "facility", required: true, maxlength: "200" });
  const at = h("input", { type: "datetime-local", name: "discharged_at", required: true });
  const reason = h("input", { type: "text", name: "reason", maxlength: "500" });
  const error = h("p", { class: "error", role: "alert" });
  return h("form", {
    class: "stack",
    "aria-label": "Record a discharge",
    onSubmit: async (e) => {
      e.preventDefault();
      error.textContent = "";
      const payload = { facility: facility.value.trim(), discharged_at: new Date(at.value).toISOString(), medication_changes: [] };
      if (reason.value.trim()) payload.reason = reason.value.trim();
      try {
        await post(`${ctx.base}/discharges`, payload);
        announce(`Discharge from ${payload.facility} recorded; its checklist is ready.`);
        await refill(body, discharges, ctx);
      } catch (err) {
        error.textContent = err.message;
      }
    },
  },
  h("h3", {}, "Record a discharge"),
  h("div", { class: "field" }, labelled("Facility", facility)),
  h("div", { class: "field" }, labelled("Discharged at (your local time)", at)),
  h("div", { class: "field" }, labelled("Reason (optional)", reason)),
  h("button", { type: "submit" }, "Record discharge"),
  error);
}

// --- Messages ----------------------------------------------------------------------------

async function messages(ctx, body) {
  const threads = await get(query(`${ctx.base}/threads`, { page_size: 10 }));
  if (!threads.length) return empty("No messages.");
  return Promise.all(threads.map(async (t) => {
    const msgs = (await get(query(`${ctx.base}/threads/${t.id}/messages`, { page_size: 50 }))).reverse();
    const text = h("textarea", { name: "body", required: true, maxlength: "4000", rows: "3" });
    const error = h("p", { class: "error", role: "alert" });
    return h("div", { class: "thread", "data-thread-id": t.id },
      h("h3", {}, t.subject),
      h("ol", { class: "messages" }, msgs.map((m) => h("li", {},
        h("span", { class: "from" }, m.author_name || "Someone"), m.author_label ? h("span", { class: "muted" }, ` (${m.author_label})`) : null,
        " · ", timeEl(m.created_at, when(m.created_at, ctx.zone)),
        h("p", { class: "body" }, m.body)))),
      h("form", {
        class: "stack",
        "aria-label": `Reply: ${t.subject}`,
        onSubmit: async (e) => {
          e.preventDefault();
          error.textContent = "";
          try {
            await post(`${ctx.base}/threads/${t.id}/messages`, { body: text.value.trim() });
            announce("Reply sent.");
            await refill(body, messages, ctx);
          } catch (err) {
            error.textContent = err.message;
          }
        },
      },
      h("div", { class: "field" }, labelled(`Reply to “${t.subject}”`, text)),
      h("button", { type: "submit" }, "Send reply"),
      error));
  }));
}

// --- Care team ---------------------------------------------------------------------------

async function careTeam(ctx) {
  const teams = await get(`${ctx.base}/care-team`);
  if (!teams.length) return empty("Not enrolled on a care team.");
  return teams.map((t) => [
    h("h3", {}, `${t.name} (${t.organization})`),
    h("ul", {}, t.members.map((m) => h("li", {}, m.name, h("span", { class: "muted" }, ` — ${humanize(m.role)}`)))),
  ]);
}
