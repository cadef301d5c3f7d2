/**
 * The two credentials the settings panel can store on the server: the Runflow API key and the callback
 * signing secret. Both live in a 0600 file written by the pack's own route, both can be supplied by an
 * environment variable instead (which then wins and cannot be changed here), and the browser only ever
 * holds the masked form the server sends back. One description per credential drives one field
 * (ui/credential_field.js), so the two fields cannot drift apart.
 */

import { english } from "./i18n.js";

/** A quick local check of an API key before sending, mirroring the server's rule; the server still decides. */
export function keyInputProblem(text, t = english) {
  const key = (text ?? "").trim();
  if (!key) return t("key.empty");
  if (!/^[A-Za-z0-9_]+$/.test(key)) return t("key.badCharacters");
  if (key.length < 12) return t("key.tooShort");
  return null;
}

/** The same for a callback secret: 16 to 256 printable ASCII characters, no spaces (config.validate_callback_secret). */
export function secretInputProblem(text, t = english) {
  const secret = (text ?? "").trim();
  if (!secret) return t("callbackSecret.empty");
  return /^[\x21-\x7e]{16,256}$/.test(secret) ? null : t("callbackSecret.malformed");
}

/**
 * `messages`: the namespace of its texts in lib/messages.js; `route`: its GET/POST/DELETE route;
 * `field`: the POST body's member; `className`: the prefix of its elements' classes (the browser test
 * finds them by it).
 */
export const CREDENTIALS = Object.freeze({
  key: Object.freeze({
    messages: "key", route: "/runflow/key", field: "key", className: "runflow-key", inputProblem: keyInputProblem,
  }),
  callbackSecret: Object.freeze({
    messages: "callbackSecret", route: "/runflow/callback-secret", field: "secret", className: "runflow-callback-secret",
    inputProblem: secretInputProblem,
  }),
});

/** The status line of a credential field, from its route's `{configured, masked, source}`. */
export function credentialStatusText(credential, status, t = english) {
  const ns = credential.messages;
  if (!status || !status.configured) return t(`${ns}.none`);
  return t(status.source === "env" ? `${ns}.env` : `${ns}.saved`, { masked: status.masked });
}

/** The browser can save or clear a credential unless the environment supplies it (that one always wins). */
export function credentialEditable(status) {
  return !status || status.source !== "env";
}
