/**
 * Runflow's ComfyUI extension: settings under "Runflow", a price badge and a status strip on the
 * isolation nodes, and a toast pointing to the key setting when a run fails for want of a key.
 * This file only wires ComfyUI to the pure logic in lib/ and the DOM helpers in ui/; it is the one
 * module that imports ComfyUI's shims.
 *
 * Nothing is drawn on the canvas by hand: the price is a node badge (`node.badges`, which the classic
 * canvas draws and Nodes 2.0 renders as DOM) and the status is a DOM widget inside the node, shown by
 * both; ComfyUI's own progress text (`send_progress_text`) appears in both as well. The same code runs on
 * the frontend ComfyUI 0.3.64 bundles (1.27) and on today's (1.5x).
 */

import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { countLines, estimateImageCount } from "./lib/batch.js";
import { isKeyError, keyErrorToast } from "./lib/errors.js";
import { english, translator } from "./lib/i18n.js";
import { priceBadgeText } from "./lib/money.js";
import { isIsolationNode } from "./lib/nodes.js";
import { parseRunSummary, parseStatus, runSummaryText, statusText, statusTone, summaryTone } from "./lib/status.js";
import { CATEGORIES, SETTING_TEXT } from "./lib/settings_text.js";
import { PriceBadge } from "./ui/badge.js";
import { callbackSecretField, connectionTest, keyField, modeSwitch, sharedStoreStatus, spendTotals } from "./ui/settings.js";
import { WIDGET_NAME, statusStrip } from "./ui/status_line.js";

/** Widget defaults for new nodes: setting id -> the node widget it fills. */
const WIDGET_DEFAULTS = {
  "Runflow.DefaultConcurrency": "concurrency",
  "Runflow.DefaultSpendLimit": "spend_limit",
};

const state = { perImage: null, mode: null, t: english };
const REFRESH_MS = 500;

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
    return { ok: false, status: 0, data: { error: { message: state.t("server.unreachable", { error }) } } };
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
  refreshAll();
}

const deps = { call, toast, onModeChange: setMode, t: (key, vars) => state.t(key, vars) };

/** A custom setting row: renders our element and never stores a value (its value stays ""). */
function customSetting(id, group, render) {
  const { name, tooltip } = SETTING_TEXT[id];
  return { id, name, category: [CATEGORIES.root, group, name], type: () => render(deps), defaultValue: "", tooltip };
}

function numberSetting(id, defaultValue, attrs) {
  const { name, tooltip } = SETTING_TEXT[id];
  return { id, name, category: [CATEGORIES.root, CATEGORIES.defaults, name], type: "number", defaultValue, attrs, tooltip };
}

const SETTINGS = [
  customSetting("Runflow.ApiKey", CATEGORIES.account, keyField),
  customSetting("Runflow.TestConnection", CATEGORIES.account, connectionTest),
  customSetting("Runflow.Mode", CATEGORIES.account, modeSwitch),
  customSetting("Runflow.Spend", CATEGORIES.account, spendTotals),
  customSetting("Runflow.SharedStore", CATEGORIES.server, sharedStoreStatus),
  customSetting("Runflow.CallbackSecret", CATEGORIES.server, callbackSecretField),
  numberSetting("Runflow.DefaultConcurrency", 8, { min: 1, max: 32, step: 1 }),
  numberSetting("Runflow.DefaultSpendLimit", 0, { min: 0, max: 100000, step: 1, maxFractionDigits: 2 }),
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

function priceText(node) {
  if (!state.perImage || !node.runflow) return "";
  return priceBadgeText({ perImage: state.perImage, count: imageCount(node), emulator: state.mode === "emulator" }, state.t);
}

/** What the strip shows: the live status while running, else the last run, else that it has not run. */
function stripContent(node) {
  const { status, summary, badged } = node.runflow;
  const shown = { priceText: badged ? "" : priceText(node) }; // the price only where badges are missing
  if (summary && !(status && !status.final)) {
    const line = state.t("status.lastRun", { summary: runSummaryText(summary, state.t) });
    return { ...shown, line, tone: summaryTone(summary) };
  }
  if (status) return { ...shown, line: statusText(status, state.t), tone: statusTone(status), status };
  return { ...shown, line: state.t("status.idle"), tone: "idle" };
}

function updateBadge(node) {
  node.runflow.badge.update(priceText(node), { emulator: state.mode === "emulator" });
  return node.runflow.badge;
}

function refresh(node) {
  if (!node.runflow) return;
  updateBadge(node);
  node.runflow.strip.update(stripContent(node));
}

function isolationNodes() {
  return (app.graph?.nodes ?? app.graph?._nodes ?? []).filter((node) => node.runflow);
}

/** Refresh every isolation node; redraw the canvas only when a badge now says something else. */
function refreshAll() {
  let changed = false;
  for (const node of isolationNodes()) {
    const before = node.runflow.badge.text;
    refresh(node);
    changed ||= node.runflow.badge.text !== before;
  }
  if (changed) redraw();
}

/**
 * Room kept below the strip for the newest finished cut-out of a running batch. ComfyUI's canvas shows
 * a node's progress preview in an image widget it appends after the others and asks 220 px for it; a
 * node without that room grows when the first preview arrives, over whatever sits below it. A node
 * loaded from a workflow keeps its saved size. Nodes 2.0 lays a node out by its content (the preview
 * included) and would only stretch the text boxes into the room, so it gets none there.
 */
const PREVIEW_ROOM = 220;
const STRIP_HEIGHT = 40;

/** The badge and the status strip, attached once per isolation node. */
function attachView(node) {
  const badge = new PriceBadge();
  const strip = statusStrip();
  const badged = Array.isArray(node.badges);
  node.runflow = { badge, strip, badged, status: null, summary: null };
  if (badged) node.badges.push(() => updateBadge(node)); // the canvas asks on every frame
  const widget = node.addDOMWidget?.(WIDGET_NAME, "runflow-status", strip.element, {
    serialize: false,
    hideOnZoom: false,
    getValue: () => "",
    setValue: () => {},
    getMinHeight: () => STRIP_HEIGHT,
    getMaxHeight: () => STRIP_HEIGHT, // the room below stays the preview's, not a taller strip
  });
  if (widget) widget.serialize = false; // never in widgets_values, never in the prompt
  refresh(node);
  const size = node.computeSize?.();
  if (size && node.size) {
    const room = app.extensionManager?.setting?.get("Comfy.VueNodes.Enabled") ? 0 : PREVIEW_ROOM;
    node.setSize?.([Math.max(node.size[0], size[0]), Math.max(node.size[1], size[1] + room)]);
  }
}

function findNode(id) {
  return app.graph?.getNodeById(Number(id)) ?? app.graph?.getNodeById(id) ?? null;
}

function onStatus(event) {
  const status = parseStatus(event.detail);
  const node = status && findNode(status.node);
  if (!node || !isIsolationNode(node.type)) return;
  if (!node.runflow) return;
  node.runflow.status = status;
  if (!status.final) node.runflow.summary = null;
  refresh(node);
  redraw();
}

function onExecutionError(event) {
  if (isKeyError(event.detail)) toast(keyErrorToast(state.t));
}

/** The user's language (ComfyUI's Locale setting, else the browser's) and the packs' translations. */
async function loadTranslations() {
  const answer = await call("GET", "/i18n");
  const locale = app.extensionManager?.setting?.get("Comfy.Locale") || navigator.language || "en";
  if (answer.ok && answer.data) state.t = translator(answer.data, locale);
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
    const [price, mode] = await Promise.all([call("GET", "/runflow/price"), call("GET", "/runflow/mode"), loadTranslations()]);
    if (price.ok) state.perImage = price.data.per_image;
    if (mode.ok) setMode(mode.data.mode);
    setInterval(refreshAll, REFRESH_MS); // the upstream batch size can change with any edit of the graph
  },

  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!isIsolationNode(nodeData.name)) return;
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message, ...rest) {
      const result = onExecuted?.call(this, message, ...rest);
      const summary = parseRunSummary(message);
      if (summary && this.runflow) {
        this.runflow.summary = summary;
        refresh(this);
        redraw();
      }
      return result;
    };
  },

  nodeCreated(node) {
    if (!isIsolationNode(node.comfyClass ?? node.type)) return;
    applyDefaults(node);
    attachView(node);
  },
});
