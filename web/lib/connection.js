/** Turns `POST /runflow/test`'s answer into the words shown inline and in the toast. */

import { formatUsd } from "./money.js";

const MODE_NAMES = { runflow: "Runflow", emulator: "offline emulator" };

const REASON_TITLES = {
  missing_key: "No key set",
  invalid_config: "Key or address malformed",
  unauthorized: "Key refused",
  forbidden: "Permission denied",
  insufficient_credit: "Balance used up",
  rate_limited: "Rate limited",
  service_unavailable: "Service unavailable",
  api_error: "Service error",
  network_error: "Cannot reach Runflow",
  timeout: "Timed out",
};

export function modeName(mode) {
  return MODE_NAMES[mode] ?? String(mode ?? "");
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
export function describeTest(result) {
  const where = modeName(result?.mode);
  if (!result || !result.ok) {
    const error = result?.error ?? {};
    return {
      ok: false,
      severity: "error",
      summary: `${REASON_TITLES[error.reason] ?? "Connection failed"} (${where})`,
      lines: [error.message ?? "No answer from the server."],
    };
  }
  const lines = [];
  if (result.user) lines.push(`Signed in as ${result.user}`);
  lines.push(...orgLines(result.orgs));
  if (result.balance !== null && result.balance !== undefined) {
    lines.push(`Balance: ${formatUsd(result.balance)}${result.currency && result.currency !== "USD" ? ` ${result.currency}` : ""}`);
  } else if (result.balance_error) {
    lines.push(`Balance not available: ${result.balance_error}`);
  }
  return { ok: true, severity: "success", summary: `Connected to ${where}`, lines };
}
