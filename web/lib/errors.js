/** Which execution errors mean "the Runflow key is missing or refused", so the UI can point to the setting. */

import { isRunflowNode } from "./nodes.js";

const KEY_WORDS = /\b(api key|RUNFLOW_API_KEY|key is (missing|invalid|malformed|refused))\b|unauthori[sz]ed|401/i;

/** True for an `execution_error` event detail raised by one of our nodes about the key. */
export function isKeyError(detail) {
  if (!detail || !isRunflowNode(detail.node_type)) return false;
  const text = `${detail.exception_type ?? ""} ${detail.exception_message ?? ""}`;
  return /MissingApiKey|AuthenticationFailed/.test(text) || KEY_WORDS.test(text);
}

export const KEY_ERROR_TOAST = Object.freeze({
  severity: "warn",
  summary: "Runflow key needed",
  detail: "Set your Runflow key in Settings > Runflow (or switch the service to the offline emulator there).",
  life: 10000,
});
