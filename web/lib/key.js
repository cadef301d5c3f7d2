/** What the key field shows. The browser only ever holds the masked form the server sends back. */

import { english } from "./i18n.js";

/** The status line under the key field, from `GET /runflow/key`'s `{configured, masked, source}`. */
export function keyStatusText(status, t = english) {
  if (!status || !status.configured) return t("key.none");
  return t(status.source === "env" ? "key.env" : "key.saved", { masked: status.masked });
}

/** The browser can save or clear the key unless the environment supplies it (that one always wins). */
export function keyEditable(status) {
  return !status || status.source !== "env";
}

/** A quick local check before sending, mirroring the server's rule; the server still decides. */
export function keyInputProblem(text, t = english) {
  const key = (text ?? "").trim();
  if (!key) return t("key.empty");
  if (!/^[A-Za-z0-9_]+$/.test(key)) return t("key.badCharacters");
  if (key.length < 12) return t("key.tooShort");
  return null;
}
