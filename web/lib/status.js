/**
 * The node's live status and run summary, from the server's payloads (docs/ARCHITECTURE.md,
 * "ComfyUI side"). Payloads cross a process boundary, so every field is checked, never trusted.
 */

import { english, imagesLabel } from "./i18n.js";
import { formatUsd } from "./money.js";

const COUNTS = ["total", "done", "cached", "resumed", "failed", "queued", "running", "waiting"];
// Parts of a count above: `waiting_for_machine` of `waiting`, `shared` and `waited_for_machine` of `cached`.
const PART_OF = { waiting_for_machine: "waiting", shared: "cached", waited_for_machine: "cached" };

function count(value) {
  const n = Number(value);
  return Number.isFinite(n) && n >= 0 ? Math.floor(n) : 0;
}

/** "12.3s", "2m 05s". */
export function formatDuration(seconds) {
  const s = Number(seconds);
  if (!Number.isFinite(s) || s < 0) return "";
  if (s < 60) return `${s.toFixed(1)}s`;
  const whole = Math.round(s);
  return `${Math.floor(whole / 60)}m ${String(whole % 60).padStart(2, "0")}s`;
}

/** A `runflow.status` event's detail as a clean object, or null when it is not one. */
export function parseStatus(detail) {
  if (!detail || typeof detail !== "object" || detail.node === undefined || detail.node === null) return null;
  const status = {
    node: String(detail.node),
    text: typeof detail.text === "string" ? detail.text : "",
    cost: typeof detail.cost === "string" ? detail.cost : null,
    elapsed_s: Number.isFinite(Number(detail.elapsed_s)) ? Number(detail.elapsed_s) : null,
    emulator: detail.emulator === true,
    final: detail.final === true,
  };
  for (const name of COUNTS) status[name] = count(detail[name]);
  // A part never exceeds its whole, so "waiting for another process" (the rest) is never negative.
  for (const [name, whole] of Object.entries(PART_OF)) status[name] = Math.min(count(detail[name]), status[whole]);
  return status;
}

/** The share of the batch that is finished, 0..1, for the node's progress strip. */
export function statusFraction(status) {
  if (!status || status.total <= 0) return 0;
  return Math.min(1, (status.done + status.cached + status.failed) / status.total);
}

/** Which colour family the status line uses. */
export function statusTone(status) {
  if (!status) return "idle";
  if (status.failed > 0) return "warn";
  return status.final ? "done" : "running";
}

/** The first `runflow` entry of an onExecuted message, or null. */
export function parseRunSummary(message) {
  const entry = Array.isArray(message?.runflow) ? message.runflow[0] : null;
  if (!entry || typeof entry !== "object") return null;
  return {
    images: count(entry.images),
    paid_runs: count(entry.paid_runs),
    cached: count(entry.cached),
    resumed: count(entry.resumed),
    cost: typeof entry.cost === "string" ? entry.cost : null,
    elapsed_s: Number.isFinite(Number(entry.elapsed_s)) ? Number(entry.elapsed_s) : null,
    emulator: entry.emulator === true,
    session_cost: typeof entry.session_cost === "string" ? entry.session_cost : null,
    flagged: count(entry.flagged),
    flags: flagCounts(entry.flags),
  };
}

/** The summary's `flags` ({flag: count}) as [name, count] pairs, junk dropped: names are QA flag ids. */
function flagCounts(value) {
  if (!value || typeof value !== "object" || Array.isArray(value)) return [];
  return Object.entries(value)
    .filter(([name, n]) => /^[a-z_]{1,32}$/.test(name) && count(n) > 0)
    .map(([name, n]) => [name, count(n)]);
}

/** "2 flagged (empty, cut_off)": how many images of the last run carry QA flags, and which flags. */
export function flaggedText(summary, t = english) {
  if (!summary || summary.flagged <= 0) return "";
  const names = summary.flags.map(([name, n]) => (n > 1 ? `${n} ${name}` : name)).join(t("status.listSeparator"));
  return t("status.flagged", { count: summary.flagged, flags: names });
}

/** The strip's tone after a run: a warning colour when any image is flagged, as a hint to look. */
export function summaryTone(summary) {
  return summary && summary.flagged > 0 ? "warn" : "done";
}

/** "4 images · 12.3s · $1.08 · 1 cached" — what the last run delivered, took and cost. */
export function runSummaryText(summary, t = english) {
  if (!summary) return "";
  const parts = [imagesLabel(summary.images, t)];
  if (summary.elapsed_s !== null) parts.push(formatDuration(summary.elapsed_s));
  parts.push(summary.emulator ? t("status.free") : formatUsd(summary.cost ?? "0"));
  if (summary.cached > 0) parts.push(t("status.cached", { count: summary.cached }));
  if (summary.resumed > 0) parts.push(t("status.resumed", { count: summary.resumed }));
  if (summary.flagged > 0) parts.push(flaggedText(summary, t));
  if (!summary.emulator && summary.session_cost !== null) {
    parts.push(t("status.session", { cost: formatUsd(summary.session_cost) }));
  }
  return parts.join(" · ");
}

/** "3 cached (1 shared, 2 after waiting for another machine)": which cached results the fleet supplied. */
function cachedText(status, t) {
  const fleet = [];
  if (status.shared > 0) fleet.push(t("status.shared", { count: status.shared }));
  if (status.waited_for_machine > 0) fleet.push(t("status.waitedForMachine", { count: status.waited_for_machine }));
  if (!fleet.length) return t("status.cached", { count: status.cached });
  return t("status.cachedFrom", { count: status.cached, sources: fleet.join(t("status.listSeparator")) });
}

/**
 * The counts after the progress, in the order and words of the server's own line
 * (runflow_api.progress.TallySnapshot.status_line): waiting for another process and for another
 * machine apart, and the fleet's share of the cached results in brackets.
 */
function liveParts(status, t) {
  const parts = [];
  const counted = (key, value) => value > 0 && parts.push(t(key, { count: value }));
  counted("status.running", status.running);
  counted("status.queued", status.queued);
  counted("status.waiting", status.waiting - status.waiting_for_machine);
  counted("status.waitingForMachine", status.waiting_for_machine);
  if (status.cached > 0) parts.push(cachedText(status, t));
  counted("status.resumed", status.resumed);
  counted("status.failed", status.failed);
  return parts;
}

/**
 * The live status line in the user's language, from the payload's counts (the server's own `text` is
 * English): "3/8 done · 2 running · 3 queued · 12s · $0.81".
 */
export function statusText(status, t = english) {
  if (!status) return "";
  const finished = status.done + status.cached + status.failed;
  const parts = [t("status.progress", { finished, total: status.total }), ...liveParts(status, t)];
  if (status.elapsed_s !== null) parts.push(`${Math.round(status.elapsed_s)}s`);
  parts.push(status.emulator ? `${t("status.emulator")}, $0.00` : formatUsd(status.cost ?? "0"));
  return parts.join(" · ");
}
