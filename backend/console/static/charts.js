// Charts drawn in the page from the API's data: plain SVG built node by node, presentation
// attributes only (no style attributes, which the CSP forbids). Each chart has a text
// alternative (role="img" with a label, and the numbers in a table beside it for screen
// readers).
import { h, s } from "./dom.js";

const INK = "#1a1a1a";
const GRID = "#c9d1db";
const BAR = "#0b5cad";
const LINE = "#a4001d";

/** Bars of fractions (0..1) with labels: adherence over 7, 30 and 90 days, or week by week
 * (many narrow bars: no value over each, the numbers are in the table beside it). */
export function barChart(title, bars, { width = 320, values = true } = {}) {
  const height = 170;
  const left = 36;
  const bottom = 30;
  const plotH = height - bottom - 12;
  const slot = (width - left - 8) / Math.max(bars.length, 1);
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width, height, class: "chart", role: "img", "aria-label": title });
  for (const tick of [0, 0.5, 0.8, 1]) {
    const y = 12 + plotH * (1 - tick);
    svg.append(
      s("line", { x1: left, x2: width - 4, y1: y, y2: y, stroke: GRID, "stroke-dasharray": tick === 0.8 ? "4 3" : null }),
      s("text", { x: left - 4, y: y + 4, "text-anchor": "end", fill: INK, "font-size": 11 }, `${Math.round(tick * 100)}%`),
    );
  }
  bars.forEach((bar, i) => {
    const x = left + i * slot + slot * 0.2;
    const w = slot * 0.6;
    const value = bar.value === null || bar.value === undefined ? null : Math.max(0, Math.min(1, bar.value));
    if (value !== null) {
      const hgt = plotH * value;
      svg.append(s("rect", { x, y: 12 + plotH - hgt, width: w, height: hgt, fill: BAR }));
      if (values) {
        svg.append(s("text", { x: x + w / 2, y: 12 + plotH - hgt - 3, "text-anchor": "middle", fill: INK, "font-size": 11 }, `${Math.round(value * 100)}%`));
      }
    }
    svg.append(s("text", { x: x + w / 2, y: height - 10, "text-anchor": "middle", fill: INK, "font-size": 11 }, bar.label));
  });
  return svg;
}

/** A score over time: points [{at, score}] oldest first, on a 0..max scale. */
export function lineChart(title, points, max) {
  const width = 360;
  const height = 180;
  const left = 30;
  const bottom = 30;
  const plotW = width - left - 12;
  const plotH = height - bottom - 12;
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width, height, class: "chart", role: "img", "aria-label": title });
  const top = max || Math.max(1, ...points.map((p) => p.score));
  for (const tick of [0, Math.round(top / 2), top]) {
    const y = 12 + plotH * (1 - tick / top);
    svg.append(
      s("line", { x1: left, x2: width - 8, y1: y, y2: y, stroke: GRID }),
      s("text", { x: left - 4, y: y + 4, "text-anchor": "end", fill: INK, "font-size": 11 }, String(tick)),
    );
  }
  if (!points.length) return svg;
  const times = points.map((p) => Date.parse(p.at));
  const t0 = Math.min(...times);
  const span = Math.max(Math.max(...times) - t0, 1);
  const xy = points.map((p, i) => [
    left + (points.length === 1 ? plotW / 2 : (plotW * (times[i] - t0)) / span),
    12 + plotH * (1 - p.score / top),
  ]);
  if (xy.length > 1) {
    svg.append(s("polyline", { points: xy.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" "), fill: "none", stroke: LINE, "stroke-width": 2 }));
  }
  xy.forEach(([x, y], i) => {
    svg.append(s("circle", { cx: x, cy: y, r: 4, fill: LINE }));
    svg.append(s("text", { x, y: y - 7, "text-anchor": "middle", fill: INK, "font-size": 11 }, String(points[i].score)));
  });
  const fmt = (t) => new Date(t).toLocaleDateString("en-US", { month: "short", day: "numeric" });
  svg.append(
    s("text", { x: left, y: height - 10, fill: INK, "font-size": 11 }, fmt(t0)),
    s("text", { x: width - 8, y: height - 10, "text-anchor": "end", fill: INK, "font-size": 11 }, fmt(t0 + span)),
  );
  return svg;
}

/** The numbers behind a chart, for screen readers (visually hidden). */
export function dataTable(caption, headers, rows) {
  return h("table", { class: "visually-hidden" },
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))),
  );
}
