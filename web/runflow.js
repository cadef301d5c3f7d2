/**
 * Runflow's ComfyUI extension: settings under "Runflow", a price badge and a status caption on the
 * isolation nodes, and a toast pointing to the key setting when a run fails for want of a key.
 * This file only wires ComfyUI to the pure logic in lib/ and the DOM/canvas helpers in ui/; it is the one
 * module that imports ComfyUI's shims.
 */

import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { countLines, estimateImageCount } from "./lib/batch.js";
import { KEY_ERROR_TOAST, isKeyError } from "./lib/errors.js";
import { priceBadgeText } from "./lib/money.js";
import { isIsolationNode } from "./lib/nodes.js";
import { parseRunSummary, parseStatus, runSummaryText } from "./lib/status.js";
import { drawCaption, drawPriceBadge } from "./ui/canvas.js";
import { connectionTest, keyField, modeSwitch, spendTotals } from "./ui/settings.js";

/** Widget defaults for new nodes: setting id -> the node widget it fills. */
const WIDGET_DEFAULTS = {
  "Runflow.DefaultConcurrency": "concurrency",
  "Runflow.DefaultSpendLimit": "spend_limit",
};

const state = { perImage: null, mode: null };

async function call(method, path, body) {
  const options = { method };
  if (body !== undefined) {
    options.headers = { "Content-Type": "application/json" };
    options.body = JSON.stringify(body);
  }
  try {
    const response = await api.fetchApi(path, options);
    const data = await response.json().catch(() => null);
    return { ok: response.ok, status: response.status, data };
  } catch (error) {
    return { ok: false, status: 0, data: { error: { message: `Could not reach ComfyUI: ${error}` } } };
  }
}

function toast(options) {
  app.extensionManager?.toast?.add(options);
}

function redraw() {
  app.graph?.setDirtyCanvas(true, true);
}

function setMode(mode) {
  state.mode = mode;
  redraw();
}

const deps = { call, toast, onModeChange: setMode };

/** A custom setting row: renders our element and never stores a value (its value stays ""). */
function customSetting(id, name, group, render, tooltip) {
  return { id, name, category: ["Runflow", group, name], type: () => render(deps), defaultValue: "", tooltip };
}

const SETTINGS = [
  customSetting("Runflow.ApiKey", "API key", "Account", keyField,
    "Stored on the ComfyUI server in a file only you can read (mode 0600), never in ComfyUI's settings or workflows. " +
      "The RUNFLOW_API_KEY environment variable, when set, takes precedence."),
  customSetting("Runflow.TestConnection", "Test connection", "Account", connectionTest,
    "Asks the selected service who the key belongs to, its scopes and the balance. Costs nothing."),
  customSetting("Runflow.Mode", "Service", "Account", modeSwitch,
    "The offline emulator runs inside ComfyUI: free, no key needed, plausible fake results for building graphs."),
  customSetting("Runflow.Spend", "Spending", "Account", spendTotals,
    "Paid runs recorded by this ComfyUI (emulator runs are free and not counted)."),
  {
    id: "Runflow.DefaultConcurrency",
    name: "Images in flight at once",
    category: ["Runflow", "Defaults for new nodes", "Images in flight at once"],
    type: "number",
    defaultValue: 8,
    attrs: { min: 1, max: 32, step: 1 },
    tooltip: "How many images of a batch a new node sends to Runflow at the same time.",
  },
  {
    id: "Runflow.DefaultSpendLimit",
    name: "Spend limit per run ($)",
    category: ["Runflow", "Defaults for new nodes", "Spend limit per run ($)"],
    type: "number",
    defaultValue: 0,
    attrs: { min: 0, max: 100000, step: 1, maxFractionDigits: 2 },
    tooltip: "A new node refuses to start an execution whose new runs would cost more than this. 0 means no limit.",
  },
];

/** The images reaching the node's IMAGE input, described for lib/batch.js (bounded by its depth limit). */
function describe(node, depth = 0) {
  if (!node || depth > 16) return null;
  const widgets = Object.fromEntries((node.widgets ?? []).map((widget) => [widget.name, widget.value]));
  const inputs = {};
  for (const input of node.inputs ?? []) {
    const link = input.link == null ? null : node.graph?.getLink?.(input.link) ?? node.graph?.links?.[input.link];
    inputs[input.name] = link ? describe(node.graph.getNodeById(link.origin_id), depth + 1) : null;
  }
  return { type: node.type, widgets, inputs };
}

function imageCount(node) {
  const urls = node.widgets?.find((widget) => widget.name === "image_urls");
  if (urls) return countLines(urls.value);
  const input = (node.inputs ?? []).find((slot) => slot.type === "IMAGE");
  const upstream = input ? describe(node, 0)?.inputs?.[input.name] : null;
  return estimateImageCount(upstream) ?? node.runflow?.summary?.images ?? null;
}

function drawRunflow(node, ctx) {
  if (node.flags?.collapsed) return;
  const titleHeight = globalThis.LiteGraph?.NODE_TITLE_HEIGHT ?? 30;
  if (state.perImage) {
    const badge = priceBadgeText({ perImage: state.perImage, count: imageCount(node), emulator: state.mode === "emulator" });
    drawPriceBadge(ctx, node, badge, titleHeight);
  }
  const { status, summary } = node.runflow ?? {};
  if (status && !status.final) drawCaption(ctx, node, { text: status.text, status });
  else if (summary) drawCaption(ctx, node, { text: `Last run: ${runSummaryText(summary)}`, tone: "done" });
  else if (status) drawCaption(ctx, node, { text: status.text, status });
}

function findNode(id) {
  return app.graph?.getNodeById(Number(id)) ?? app.graph?.getNodeById(id) ?? null;
}

function onStatus(event) {
  const status = parseStatus(event.detail);
  const node = status && findNode(status.node);
  if (!node || !isIsolationNode(node.type)) return;
  node.runflow = { ...node.runflow, status, summary: status.final ? node.runflow?.summary : null };
  redraw();
}

function onExecutionError(event) {
  if (isKeyError(event.detail)) toast(KEY_ERROR_TOAST);
}

function applyDefaults(node) {
  for (const [settingId, widgetName] of Object.entries(WIDGET_DEFAULTS)) {
    const widget = node.widgets?.find((candidate) => candidate.name === widgetName);
    const value = app.extensionManager?.setting?.get(settingId);
    if (widget && value !== undefined && value !== null) widget.value = value;
  }
}

app.registerExtension({
  name: "Runflow.ProductIsolation",
  settings: SETTINGS,

  async setup() {
    api.addEventListener("runflow.status", onStatus);
    api.addEventListener("execution_error", onExecutionError);
    const [price, mode] = await Promise.all([call("GET", "/runflow/price"), call("GET", "/runflow/mode")]);
    if (price.ok) state.perImage = price.data.per_image;
    if (mode.ok) setMode(mode.data.mode);
  },

  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!isIsolationNode(nodeData.name)) return;
    const onDrawForeground = nodeType.prototype.onDrawForeground;
    nodeType.prototype.onDrawForeground = function (ctx, ...rest) {
      const result = onDrawForeground?.call(this, ctx, ...rest);
      drawRunflow(this, ctx);
      return result;
    };
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message, ...rest) {
      const result = onExecuted?.call(this, message, ...rest);
      const summary = parseRunSummary(message);
      if (summary) this.runflow = { ...this.runflow, summary };
      redraw();
      return result;
    };
  },

  nodeCreated(node) {
    if (isIsolationNode(node.comfyClass ?? node.type)) applyDefaults(node);
  },
});
