/**
 * Drawing on an isolation node: the price badge in the title bar and a caption strip under the node
 * with the live status (while running) or the last run's summary. ComfyUI already prints the engine's
 * status text inside the node; the caption adds what that text cannot: a progress fill, a colour for the
 * state, and the result that stays after the run.
 */

import { statusFraction, statusTone } from "../lib/status.js";

const TONES = {
  running: { fill: "#1e3a5f", bar: "#3b82f6", text: "#dbeafe", dot: "#60a5fa" },
  done: { fill: "#14391f", bar: "#22c55e", text: "#dcfce7", dot: "#4ade80" },
  warn: { fill: "#3f2a12", bar: "#f59e0b", text: "#fef3c7", dot: "#fbbf24" },
  idle: { fill: "#2a2a2a", bar: "#555", text: "#ddd", dot: "#888" },
};

const FONT = "12px Inter, Arial, sans-serif";
const CAPTION_HEIGHT = 22;

function roundRect(ctx, x, y, w, h, r) {
  ctx.beginPath();
  ctx.roundRect(x, y, w, h, r);
}

/** Text shortened with an ellipsis to fit `width` pixels. */
function fit(ctx, text, width) {
  if (ctx.measureText(text).width <= width) return text;
  let cut = text;
  while (cut.length > 1 && ctx.measureText(`${cut}…`).width > width) cut = cut.slice(0, -1);
  return `${cut}…`;
}

/** A pill at the right of the title bar; keeps clear of the title text on the left. */
export function drawPriceBadge(ctx, node, text, titleHeight) {
  if (!text) return;
  ctx.save();
  ctx.font = FONT;
  const room = node.size[0] * 0.55;
  const label = fit(ctx, text, room - 12);
  const width = ctx.measureText(label).width + 14;
  const height = titleHeight - 12;
  const x = node.size[0] - width - 8;
  const y = -titleHeight + 6;
  roundRect(ctx, x, y, width, height, height / 2);
  ctx.fillStyle = text.includes("emulator") ? "#3b3b52" : "#14532d";
  ctx.fill();
  ctx.fillStyle = text.includes("emulator") ? "#d4d4f7" : "#bbf7d0";
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  ctx.fillText(label, x + 7, y + height / 2 + 0.5);
  ctx.restore();
}

/** The strip under the node: a coloured dot, the line of text, and how much of the batch is finished. */
export function drawCaption(ctx, node, { text, status = null, tone = statusTone(status) }) {
  if (!text) return;
  const colours = TONES[tone] ?? TONES.idle;
  const width = node.size[0];
  const y = node.size[1] + 6;
  ctx.save();
  roundRect(ctx, 0, y, width, CAPTION_HEIGHT, 6);
  ctx.fillStyle = colours.fill;
  ctx.fill();
  const fraction = tone === "done" ? 1 : statusFraction(status);
  if (fraction > 0) {
    ctx.save();
    ctx.clip();
    ctx.fillStyle = colours.bar;
    ctx.globalAlpha = 0.35;
    ctx.fillRect(0, y, width * fraction, CAPTION_HEIGHT);
    ctx.restore();
  }
  ctx.beginPath();
  ctx.arc(11, y + CAPTION_HEIGHT / 2, 4, 0, Math.PI * 2);
  ctx.fillStyle = colours.dot;
  ctx.fill();
  ctx.font = FONT;
  ctx.fillStyle = colours.text;
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  ctx.fillText(fit(ctx, text, width - 30), 22, y + CAPTION_HEIGHT / 2 + 0.5);
  ctx.restore();
}
