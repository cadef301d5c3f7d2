/**
 * What the settings panel says about the fleet's shared store, from `GET /runflow/shared-store`. The
 * address is set only by RUNFLOW_SHARED_STORE where ComfyUI starts (it may carry the Redis password), so
 * this is read-only: the server sends the address masked ("redis://host:6379/0 (password set)"), and
 * today's spend is the whole fleet's while the store answers, this machine's alone while it does not.
 */

import { english } from "./i18n.js";
import { formatUsd } from "./money.js";

/** "$4.05 of $50.00" when there is a team budget, else "$4.05". */
function spentText(today, budget, t) {
  const spent = formatUsd(today.spent ?? "0");
  if (budget === null || budget === undefined || budget === "") return spent;
  return t("sharedStore.ofBudget", { spent, budget: formatUsd(budget) || String(budget) });
}

function todayLine(state, t) {
  const today = state.today;
  if (!today || typeof today !== "object") return null;
  const key = today.fleet === true ? "sharedStore.fleetToday" : "sharedStore.localToday";
  const line = t(key, { spent: spentText(today, state.team_budget, t) });
  const reserved = formatUsd(today.reserved);
  return reserved && reserved !== "$0.00" ? `${line} · ${t("sharedStore.reserved", { reserved })}` : line;
}

/**
 * {tone, lines} for the shared-store item: "muted" when there is none, "ok" when connected, "warn" when
 * it is set but unreachable or unusable (then the server's problem is the second line).
 */
export function sharedStoreView(state, t = english) {
  if (!state || state.configured !== true) return { tone: "muted", lines: [t("sharedStore.none")] };
  const connected = state.connected === true;
  const head = !state.url
    ? t("sharedStore.unusable")
    : t(connected ? "sharedStore.connected" : "sharedStore.unreachable", { url: state.url });
  const lines = [head];
  if (!connected && state.problem) lines.push(String(state.problem));
  const today = todayLine(state, t);
  if (today) lines.push(today);
  return { tone: connected ? "ok" : "warn", lines };
}
