// The panel: placeholder until the panel summary lands.
import { h } from "./dom.js";

export async function showPanel(main) {
  document.title = "Panel · Care console";
  main.append(h("h1", { tabindex: "-1" }, "Panel"), h("p", {}, "The panel view is not built yet; the worklist and each patient's chart are."));
}
