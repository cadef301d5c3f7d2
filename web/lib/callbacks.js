/**
 * The line under the callback-secret field saying whether Runflow will call back. Callbacks need two
 * things, the secret (settable here) and RUNFLOW_PUBLIC_URL (environment only, since it names how the
 * internet reaches this server); the line says which one is missing, so nobody saves a secret and then
 * wonders why runs are still polled. Built from `GET /runflow/callback-secret`'s
 * `{configured, public_url, active, error}`.
 */

import { english } from "./i18n.js";

/** {text, tone} for the callbacks line; tone "ok" when they are on, "warn" for an unusable setting. */
export function callbacksNote(status, t = english) {
  if (!status) return { text: "", tone: "muted" };
  if (status.error) return { text: t("callbackSecret.unusable", { problem: status.error }), tone: "warn" };
  if (status.active) return { text: t("callbackSecret.on", { url: status.public_url }), tone: "ok" };
  if (status.configured) return { text: t("callbackSecret.needsUrl"), tone: "muted" };
  if (status.public_url) return { text: t("callbackSecret.needsSecret", { url: status.public_url }), tone: "muted" };
  return { text: t("callbackSecret.off"), tone: "muted" };
}
