/**
 * A field for a credential kept on the server (lib/credentials.js describes the two: the API key and the
 * callback secret): status with the masked value and its source, a password input emptied as soon as it
 * is sent, Save and Clear, all disabled when the environment supplies the credential. Nothing typed here
 * is ever written to a ComfyUI setting, and the only thing read back is the masked form.
 *
 * `note(state, t)` (optional) gives a further {text, tone} line from the route's answer, refreshed with it.
 */

import { credentialEditable, credentialStatusText } from "../lib/credentials.js";
import { COLUMN, ROW, button, errorText, h, setMessage } from "./dom.js";

export function credentialField(credential, { call, toast, t }, { note = null } = {}) {
  const { messages: ns, route, field, className: name } = credential;
  const status = h("div", { className: `${name}-status`, style: { fontWeight: "600" } }, t(`${ns}.checking`));
  const input = h("input", {
    type: "password",
    className: `p-inputtext p-component ${name}-input`,
    placeholder: t(`${ns}.placeholder`),
    autocomplete: "off",
    spellcheck: false,
    style: { flex: "1", minWidth: "0" },
  });
  const message = h("div", { className: `${name}-message`, style: { fontSize: "0.85em" } });
  const noteLine = note ? h("div", { className: `${name}-note`, style: { fontSize: "0.85em" } }) : null;
  const save = button(t(`${ns}.save`), () => submit(), { name: `${name}-save` });
  const clear = button(t(`${ns}.clear`), () => remove(), { secondary: true, name: `${name}-clear` });

  function show(state) {
    status.textContent = credentialStatusText(credential, state, t);
    const editable = credentialEditable(state);
    for (const control of [input, save, clear]) control.disabled = !editable;
    clear.disabled = !editable || !state?.configured;
    if (noteLine) {
      const { text, tone } = note(state, t);
      setMessage(noteLine, text, tone);
    }
  }

  async function refresh() {
    const answer = await call("GET", route);
    if (answer.ok) show(answer.data);
    else setMessage(message, errorText(answer, t), "error");
  }

  async function submit() {
    const problem = credential.inputProblem(input.value, t);
    if (problem) return setMessage(message, problem, "error");
    const value = input.value.trim();
    input.value = "";
    const answer = await call("POST", route, { [field]: value });
    if (!answer.ok) return setMessage(message, errorText(answer, t), "error");
    show(answer.data);
    setMessage(message, t(`${ns}.savedMessage`), "ok");
    toast({ severity: "success", summary: t(`${ns}.savedToast`), detail: answer.data.masked, life: 4000 });
  }

  async function remove() {
    const answer = await call("DELETE", route, {});
    if (!answer.ok) return setMessage(message, errorText(answer, t), "error");
    show(answer.data);
    setMessage(message, t(`${ns}.removed`), "ok");
  }

  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") submit();
  });
  refresh();
  const row = h("div", { style: ROW }, input, save, clear);
  return h("div", { className: `${name}-field`, style: COLUMN }, status, row, message, noteLine);
}
