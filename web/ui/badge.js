/**
 * The price badge as a node badge: an entry of `node.badges`, the frontend's own place for badges.
 * The classic canvas calls `getWidth(ctx)` and `draw(ctx, x, y)` on it (above the title bar, right-aligned,
 * like ComfyUI's node-source badge); Nodes 2.0 renders its `text`, `fgColor` and `bgColor` as DOM. The
 * frontend does not export its LGraphBadge class to extensions, so this one has the same shape.
 */

const FONT = "12px Inter, Arial, sans-serif";
const HEIGHT = 20;
const PADDING = 7;
const COLOURS = {
  paid: { fgColor: "#bbf7d0", bgColor: "#14532d" },
  emulator: { fgColor: "#d4d4f7", bgColor: "#3b3b52" },
};

export class PriceBadge {
  constructor() {
    this.text = "";
    this.tone = "paid";
  }

  /** Set from `priceBadgeText`; `emulator` picks the colours. */
  update(text, { emulator = false } = {}) {
    this.text = text ?? "";
    this.tone = emulator ? "emulator" : "paid";
  }

  get fgColor() {
    return COLOURS[this.tone].fgColor;
  }

  get bgColor() {
    return COLOURS[this.tone].bgColor;
  }

  get height() {
    return this.text ? HEIGHT : 0;
  }

  getWidth(ctx) {
    if (!this.text) return 0;
    ctx.save();
    ctx.font = FONT;
    const width = ctx.measureText(this.text).width + PADDING * 2;
    ctx.restore();
    return width;
  }

  draw(ctx, x, y) {
    if (!this.text) return;
    const width = this.getWidth(ctx);
    ctx.save();
    ctx.beginPath();
    ctx.roundRect(x, y, width, HEIGHT, HEIGHT / 2);
    ctx.fillStyle = this.bgColor;
    ctx.fill();
    ctx.font = FONT;
    ctx.fillStyle = this.fgColor;
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    ctx.fillText(this.text, x + PADDING, y + HEIGHT / 2 + 0.5);
    ctx.restore();
  }
}
