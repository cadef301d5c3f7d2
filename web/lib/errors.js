/** Which execution errors mean "the Runflow key is missing or refused", so the UI can point to the setting. */

import { english } from "./i18n.js";
import { isRunflowNode } from "./nodes.js";

const KEY_WORDS = /\b(api key|RUNFLOW_API_KEY|key is (missing|invalid|malformed|refused))\b|unauthori[sz]ed|401/i;

/** True for an `execution_error` event detail raised by one of our nodes about the key. */
export function isKeyError(detail) {
  if (!detail || !isRunflowNode(detail.node_type)) return false;
  const text = `${detail.exception_type ?? ""} ${detail.exception_message ?? ""}`;
  return /MissingApiKey|AuthenticationFailed/.test(text) || KEY_WORDS.test(text);
}

/** The toast that points to the key setting, in the translator's language. */
export function keyErrorToast(t = english) {
  return Object.freeze({ severity: "warn", summary: t("key.neededTitle"), detail: t("key.neededDetail"), life: 10000 });
}

export const KEY_ERROR_TOAST = keyErrorToast();
