/**
 * The status strip inside an isolation node: the price (a fallback for the badge), the live status
 * while a run goes on, and the last run's summary afterwards. It is a DOM widget, so the classic canvas
 * and Nodes 2.0 show the same element; the widget is never serialised, so saved workflows and prompts
 * are exactly as before (it is added last, after every input widget).
 */

import { statusFraction } from "../lib/status.js";
import { h } from "./dom.js";

export const WIDGET_NAME = "runflow_status";

const TONES = {
  running: { fill: "#1e3a5f", bar: "#3b82f6", text: "#dbeafe", dot: "#60a5fa" },
  done: { fill: "#14391f", bar: "#22c55e", text: "#dcfce7", dot: "#4ade80" },
  warn: { fill: "#3f2a12", bar: "#f59e0b", text: "#fef3c7", dot: "#fbbf24" },
  idle: { fill: "#2a2a2a", bar: "#555", text: "#ddd", dot: "#888" },
};

/** The element and an `update({price, text, tone, status})` that redraws it. */
export function statusStrip() {
  const price = h("span", { className: "runflow-price", style: { fontWeight: "600", whiteSpace: "nowrap" } });
  const dot = h("span", { style: { width: "8px", height: "8px", borderRadius: "50%", flex: "none" } });
  const text = h("span", {
    className: "runflow-status-text",
    style: { overflow: "hidden", textOverflow: "ellipsis", whiteSpace: "nowrap", flex: "1", minWidth: "0" },
  });
  const fill = h("div", { style: { position: "absolute", inset: "0 auto 0 0", opacity: "0.35", width: "0" } });
  const row = h("div", { style: { position: "relative", display: "flex", gap: "6px", alignItems: "center" } }, dot, text);
  const element = h(
    "div",
    {
      className: "runflow-status",
      style: {
        position: "relative", display: "flex", flexDirection: "column", gap: "2px", padding: "3px 8px",
        borderRadius: "6px", font: "12px Inter, Arial, sans-serif", overflow: "hidden", boxSizing: "border-box",
      },
    },
    fill, price, row,
  );  // prettier-ignore

  function update({ priceText = "", line = "", tone = "idle", status = null }) {
    const colours = TONES[tone] ?? TONES.idle;
    price.textContent = priceText;
    price.style.display = priceText ? "" : "none";
    text.textContent = line;
    element.dataset.tone = tone;
    element.style.background = colours.fill;
    element.style.color = colours.text;
    dot.style.background = colours.dot;
    fill.style.background = colours.bar;
    fill.style.width = `${Math.round((tone === "done" ? 1 : statusFraction(status)) * 100)}%`;
  }

  return { element, update };
}
