// The patient chart: placeholder until the chart lands.
import { get } from "./api.js";
import { h } from "./dom.js";

export async function showChart(main, id) {
  const patient = await get(`/patients/${id}`);
  document.title = `${patient.display_name} · Care console`;
  main.append(h("h1", { tabindex: "-1" }, patient.display_name));
}
