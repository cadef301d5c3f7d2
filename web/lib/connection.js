/** Turns `POST /runflow/test`'s answer into the words shown inline and in the toast. */

import { english } from "./i18n.js";
import { formatUsd } from "./money.js";

const MODES = ["runflow", "emulator"];
const REASONS = [
  "missing_key", "invalid_config", "unauthorized", "forbidden", "insufficient_credit", "rate_limited",
  "service_unavailable", "api_error", "network_error", "timeout",
];

export function modeName(mode, t = english) {
  return MODES.includes(mode) ? t(`mode.${mode}`) : String(mode ?? "");
}

/** "Acme (owner): runs:create, runs:read" for each organisation. */
export function orgLines(orgs) {
  return (Array.isArray(orgs) ? orgs : []).map((org) => {
    const role = org.role ? ` (${org.role})` : "";
    const scopes = Array.isArray(org.scopes) && org.scopes.length ? `: ${org.scopes.join(", ")}` : "";
    return `${org.name ?? "organisation"}${role}${scopes}`;
  });
}

/** {ok, severity, summary, lines} for a test result; `lines` are shown inline and joined in the toast. */
export function describeTest(result, t = english) {
  const where = modeName(result?.mode, t);
  if (!result || !result.ok) {
    const error = result?.error ?? {};
    const title = REASONS.includes(error.reason) ? t(`test.reasons.${error.reason}`) : t("test.failed");
    return { ok: false, severity: "error", summary: `${title} (${where})`, lines: [error.message ?? t("test.noAnswer")] };
  }
  const lines = [];
  if (result.user) lines.push(t("test.signedIn", { user: result.user }));
  lines.push(...orgLines(result.orgs));
  if (result.balance !== null && result.balance !== undefined) {
    const currency = result.currency && result.currency !== "USD" ? ` ${result.currency}` : "";
    lines.push(t("test.balance", { balance: `${formatUsd(result.balance)}${currency}` }));
  } else if (result.balance_error) {
    lines.push(t("test.balanceMissing", { reason: result.balance_error }));
  }
  return { ok: true, severity: "success", summary: t("test.connected", { where }), lines };
}
