// A FHIR R4 Timing in plain words: {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d",
// "when": ["CM", "CV"]}} is "twice a day with breakfast and dinner".

const WHEN = {
  MORN: "in the morning", "MORN.early": "early in the morning", "MORN.late": "late in the morning",
  NOON: "at noon", AFT: "in the afternoon", "AFT.early": "early in the afternoon", "AFT.late": "late in the afternoon",
  EVE: "in the evening", "EVE.early": "early in the evening", "EVE.late": "late in the evening",
  NIGHT: "at night", PHS: "after sleep", HS: "at bedtime", WAKE: "on waking",
  C: "with meals", CM: "with breakfast", CD: "with lunch", CV: "with dinner",
  AC: "before meals", ACM: "before breakfast", ACD: "before lunch", ACV: "before dinner",
  PC: "after meals", PCM: "after breakfast", PCD: "after lunch", PCV: "after dinner",
};
const CODES = {
  QD: "once a day", BID: "twice a day", TID: "3 times a day", QID: "4 times a day",
  QOD: "every other day", Q4H: "every 4 hours", Q6H: "every 6 hours", Q8H: "every 8 hours",
  AM: "every morning", PM: "every afternoon or evening",
};
const UNITS = { s: "second", min: "minute", h: "hour", d: "day", wk: "week", mo: "month", a: "year" };
const DAYS = { mon: "Monday", tue: "Tuesday", wed: "Wednesday", thu: "Thursday", fri: "Friday", sat: "Saturday", sun: "Sunday" };

export function list(words) {
  if (words.length <= 1) return words.join("");
  return `${words.slice(0, -1).join(", ")} and ${words[words.length - 1]}`;
}

function times(n) {
  return n === 1 ? "once" : n === 2 ? "twice" : `${n} times`;
}

function unit(u, n) {
  const name = UNITS[u] || u;
  return n === 1 ? name : `${n} ${name}s`;
}

function hhmm(t) {
  return String(t).slice(0, 5);
}

function whenWords(codes) {
  // "with breakfast and dinner", not "with breakfast and with dinner"
  const phrases = codes.map((c) => WHEN[c] || c);
  const first = phrases[0].split(" ")[0];
  if (phrases.length > 1 && ["with", "before", "after"].includes(first) && phrases.every((p) => p.startsWith(`${first} `))) {
    return `${first} ${list(phrases.map((p) => p.slice(first.length + 1)))}`;
  }
  return list(phrases);
}

function offsetWords(minutes, codes) {
  if (!minutes) return whenWords(codes);
  // FHIR: offset is minutes from the event; "ACM + 30" is 30 minutes before breakfast.
  const phrase = codes.map((c) => (WHEN[c] || c).replace(/^(before|after|with) /, ""));
  const side = codes.every((c) => c.startsWith("PC")) ? "after" : "before";
  return `${minutes} minutes ${side} ${list(phrase)}`;
}

export function timingWords(timing, asNeeded) {
  if (!timing) return asNeeded ? "as needed" : "no schedule";
  const r = timing.repeat || {};
  if (r.count === 1 && !(timing.event && timing.event.length)) {
    // One prompt: "once, on the next Monday at 10:00", or "once, now".
    const once = ["once"];
    if (r.dayOfWeek && r.dayOfWeek.length) once.push(`on the next ${list(r.dayOfWeek.map((d) => DAYS[d] || d))}`);
    if (r.timeOfDay && r.timeOfDay.length) once.push(`at ${list(r.timeOfDay.map(hhmm))}`);
    return once.length === 1 ? "once, now" : `${once[0]}, ${once.slice(1).join(" ")}`;
  }
  const parts = [];
  const code = timing.code && timing.code.coding && timing.code.coding[0] && timing.code.coding[0].code;
  if (code && CODES[code]) parts.push(CODES[code]);
  else if (r.frequency || r.period) {
    const f = r.frequency || 1;
    const p = r.period || 1;
    const u = r.periodUnit || "d";
    if (f === 1 && p !== 1) parts.push(`every ${unit(u, p)}`);
    else if (p === 1) parts.push(`${times(f)} a ${UNITS[u] || u}`);
    else parts.push(`${times(f)} every ${unit(u, p)}`);
  }
  if (r.dayOfWeek && r.dayOfWeek.length) parts.push(`on ${list(r.dayOfWeek.map((d) => DAYS[d] || d))}`);
  if (r.when && r.when.length) parts.push(offsetWords(r.offset, r.when));
  if (r.timeOfDay && r.timeOfDay.length) parts.push(`at ${list(r.timeOfDay.map(hhmm))}`);
  if (timing.event && timing.event.length) parts.push(`on ${timing.event.length} set date${timing.event.length > 1 ? "s" : ""}`);
  if (r.count) parts.push(`${r.count} time${r.count > 1 ? "s" : ""} in all`);
  if (r.boundsDuration && r.boundsDuration.value) parts.push(`for ${unit(r.boundsDuration.code || r.boundsDuration.unit || "d", r.boundsDuration.value)}`);
  if (r.boundsPeriod && r.boundsPeriod.end) parts.push(`until ${String(r.boundsPeriod.end).slice(0, 10)}`);
  if (asNeeded) parts.push("as needed");
  return parts.join(" ") || "as scheduled";
}
