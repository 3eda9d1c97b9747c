// The console's shell: sign-in, the header, and the router that shows one page per path.
import { endSession, session, whenSignedOut } from "./api.js";
import { announce, clear, h } from "./dom.js";
import { signInPage, startSignIn } from "./signin.js";
import { showWorklist } from "./worklist.js";
import { showPanel } from "./panel.js";
import { showChart } from "./chart.js";

const ROOT = "/console/";
let config = null;
let loadError = null; // the sign-in library could not be loaded
let leave = []; // what the current page must stop (timers) when another is shown

const routes = [
  [/^\/console\/?$/, () => (session.signedIn ? go("/console/worklist", true) : showSignIn())],
  [/^\/console\/worklist\/?$/, (main) => showWorklist(main, pageContext())],
  [/^\/console\/panel\/?$/, (main) => showPanel(main, pageContext())],
  [/^\/console\/patients\/(\d{1,10})\/?$/, (main, id) => showChart(main, Number(id), pageContext())],
];

function pageContext() {
  return {
    config,
    onLeave: (fn) => leave.push(fn),
    go,
  };
}

export function go(path, replace = false) {
  if (replace) window.history.replaceState(null, "", path);
  else window.history.pushState(null, "", path);
  render();
}

function main() {
  return document.getElementById("main");
}

function renderHeader() {
  const nav = clear(document.getElementById("nav"));
  const who = clear(document.getElementById("who"));
  if (!session.signedIn) return;
  const here = window.location.pathname;
  const link = (href, text) =>
    h("a", { href, "data-nav": "", "aria-current": here.startsWith(href) ? "page" : null }, text);
  nav.append(h("ul", {}, h("li", {}, link("/console/worklist", "Worklist")), h("li", {}, link("/console/panel", "Panel"))));
  who.append(
    h("span", {}, "Signed in as ", h("strong", {}, session.name || "you")),
    h("button", { type: "button", class: "secondary", onClick: signOut }, "Sign out"),
  );
}

async function signOut() {
  await endSession();
  announce("Signed out.");
  go(ROOT);
}

async function render() {
  for (const fn of leave.splice(0)) fn();
  const path = window.location.pathname;
  if (!session.signedIn && path !== ROOT && path !== "/console") {
    window.history.replaceState(null, "", ROOT);
    return render();
  }
  renderHeader();
  // Each page draws into its own element, so a page still waiting for the API when another
  // is shown (Panel clicked while the worklist loads) draws into a detached one, not this.
  const el = h("div", { class: "page" });
  clear(main()).append(el);
  for (const [pattern, show] of routes) {
    const m = path.match(pattern);
    if (m) {
      try {
        await show(el, ...m.slice(1));
      } catch (err) {
        showError(el, err);
      }
      return;
    }
  }
  document.title = "Not found · Care console";
  el.append(h("h1", {}, "Page not found"), h("p", {}, h("a", { href: "/console/worklist", "data-nav": "" }, "Go to the worklist")));
}

export function showError(el, err) {
  console.warn(err);
  clear(el).append(
    h("h1", {}, "Something went wrong"),
    h("p", { role: "alert" }, err && err.message ? err.message : "The page could not be shown."),
  );
}

function showSignIn() {
  document.title = "Sign in · Care console";
  main().append(
    h("h1", {}, "Sign in"),
    ...signInPage(config, loadError, () => {
      announce(`Signed in as ${session.name || "you"}.`);
      go("/console/worklist");
    }),
  );
}

document.addEventListener("click", (event) => {
  const a = event.target.closest("a[data-nav]");
  if (!a || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
  event.preventDefault();
  go(a.getAttribute("href"));
});
window.addEventListener("popstate", render);
whenSignedOut(() => {
  announce("Your sign-in ended; sign in again.");
  window.history.replaceState(null, "", ROOT);
  render();
});

async function start() {
  try {
    const response = await fetch("/console/config.json", { credentials: "omit", cache: "no-store" });
    config = await response.json();
  } catch (err) {
    config = null;
  }
  try {
    await startSignIn(config);
  } catch (err) {
    console.warn("the sign-in library could not be loaded:", err.message);
    loadError = err;
  }
  render();
}

start();
