// Building the page: every text goes in through text nodes, never as HTML, so whatever a
// patient typed (a name like <img src=x onerror=alert(1)>) shows as the characters it is.

const SVG_NS = "http://www.w3.org/2000/svg";

function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

function apply(el, props) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.setAttribute("class", value);
    else if (key === "text") el.textContent = String(value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2).toLowerCase(), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "value") el.value = value;
    else if (key === "checked" || key === "disabled" || key === "selected") el[key] = Boolean(value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  return el;
}

/** h("button", {class: "x", onClick: fn}, "text", child) */
export function h(tag, props, ...children) {
  return append(apply(document.createElement(tag), props), children);
}

/** The same for SVG elements (charts). */
export function s(tag, props, ...children) {
  return append(apply(document.createElementNS(SVG_NS, tag), props), children);
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

let uid = 0;
/** A unique id for label/for pairs. */
export function nextId(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** A labelled control: returns [label, control]. */
export function labelled(text, control) {
  if (!control.id) control.id = nextId("f");
  return [h("label", { for: control.id }, text), control];
}

export function select(name, options, value) {
  return h(
    "select",
    { name },
    options.map(([v, label]) => h("option", { value: v, selected: String(v) === String(value) }, label)),
  );
}

const announcer = () => document.getElementById("announce");

/** Tell assistive technology (and anyone watching) what just happened. */
export function announce(message) {
  const el = announcer();
  if (!el) return;
  el.textContent = "";
  // A fresh text node each time so the same message is read again.
  window.setTimeout(() => {
    el.textContent = message;
  }, 30);
}

const DATE_TIME = new Intl.DateTimeFormat("en-US", { dateStyle: "medium", timeStyle: "short" });
const DATE = new Intl.DateTimeFormat("en-US", { dateStyle: "medium" });

const ZONED = new Map(); // one formatter per zone: making one costs about a millisecond

/** An instant, in a given IANA zone (the patient's, an appointment's) or the browser's. */
export function when(iso, timeZone) {
  if (!iso) return "—";
  if (!timeZone) return DATE_TIME.format(new Date(iso));
  let format = ZONED.get(timeZone);
  if (!format) {
    try {
      format = new Intl.DateTimeFormat("en-US", {
        year: "numeric", month: "short", day: "numeric", hour: "numeric", minute: "2-digit", timeZone, timeZoneName: "short",
      });
    } catch (err) {
      format = DATE_TIME;
    }
    ZONED.set(timeZone, format);
  }
  return format.format(new Date(iso));
}

export function day(iso) {
  if (!iso) return "—";
  // A plain date (YYYY-MM-DD) is a calendar day, not an instant: no zone shift.
  const [y, m, d] = iso.slice(0, 10).split("-").map(Number);
  return DATE.format(new Date(y, m - 1, d));
}

export function percent(fraction) {
  return fraction === null || fraction === undefined ? "—" : `${Math.round(fraction * 100)} %`;
}

export function timeEl(iso, text) {
  return h("time", { datetime: iso || "" }, text ?? when(iso));
}

export function humanize(code) {
  return String(code || "").replaceAll("_", " ");
}
