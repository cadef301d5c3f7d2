/**
 * The Runflow settings that are not plain values: the key field, the connection test, the service switch,
 * the spend totals, the callback-secret field and the shared store's state. Each renders its own element
 * and talks to the pack's routes; none of them ever calls the setting's setter, so ComfyUI's settings file
 * (readable by anyone who reaches the server) never holds a credential or anything derived from one.
 *
 * `call(method, path, body)` resolves to {ok, status, data}; `toast(options)` shows a ComfyUI toast;
 * `t(key, vars)` gives the user's language (lib/i18n.js).
 */

import { callbacksNote } from "../lib/callbacks.js";
import { describeTest, modeName } from "../lib/connection.js";
import { CREDENTIALS } from "../lib/credentials.js";
import { formatUsd } from "../lib/money.js";
import { sharedStoreView } from "../lib/shared_store.js";
import { credentialField } from "./credential_field.js";
import { COLUMN, ROW, button, errorText, h, setMessage } from "./dom.js";

/** The API key: status, password input, Save / Clear (ui/credential_field.js). */
export function keyField(deps) {
  return credentialField(CREDENTIALS.key, deps);
}

/** The callback signing secret, kept like the key, and a line saying whether callbacks are on. */
export function callbackSecretField(deps) {
  return credentialField(CREDENTIALS.callbackSecret, deps, { note: callbacksNote });
}

/**
 * The fleet's shared store: read-only, because its address comes only from RUNFLOW_SHARED_STORE (it may
 * hold the Redis password, which must never pass through the browser or a ComfyUI setting).
 */
export function sharedStoreStatus({ call, t }) {
  const view = h("div", { className: "runflow-shared-store", style: { ...COLUMN, fontSize: "0.9em" } }, t("sharedStore.loading"));
  call("GET", "/runflow/shared-store").then((answer) => {
    if (!answer.ok) return setMessage(view, errorText(answer, t), "error");
    const { tone, lines } = sharedStoreView(answer.data, t);
    view.replaceChildren(...lines.map((line) => h("div", {}, line)));
    view.dataset.tone = tone;
    const [head] = view.children;
    setMessage(head, lines[0], tone);
  });
  return view;
}

/** A button that runs the connection test and shows the answer inline and as a toast. */
export function connectionTest({ call, toast, t }) {
  const result = h("div", { className: "runflow-test-result", style: { fontSize: "0.9em", lineHeight: "1.45" } });
  const run = button(t("test.button"), () => test(), { name: "runflow-test-button" });

  async function test() {
    run.disabled = true;
    result.replaceChildren(h("div", { style: { color: "var(--p-text-muted-color, #999)" } }, t("test.testing")));
    const answer = await call("POST", "/runflow/test", {});
    run.disabled = false;
    const view = describeTest(answer.ok ? answer.data : { ok: false, error: answer.data?.error }, t);
    const title = h("div", { style: { fontWeight: "600", color: view.ok ? "#4ade80" : "#f87171" } },
      `${view.ok ? "✓" : "✗"} ${view.summary}`);
    result.replaceChildren(title, ...view.lines.map((line) => h("div", {}, line)));
    result.dataset.ok = String(view.ok);
    toast({ severity: view.severity, summary: view.summary, detail: view.lines.join("\n"), life: 8000 });
  }

  return h("div", { className: "runflow-test", style: COLUMN }, h("div", { style: ROW }, run), result);
}

/** Runflow or the offline emulator, stored on the server so nodes, routes and the CLI agree. */
export function modeSwitch({ call, toast, onModeChange, t }) {
  const select = h("select", {
    className: "p-inputtext p-component runflow-mode-select",
    style: { width: "100%" },
  });
  const options = { runflow: t("mode.optionRunflow"), emulator: t("mode.optionEmulator") };
  for (const [value, label] of Object.entries(options)) select.append(h("option", { value }, label));
  const note = h("div", { className: "runflow-mode-note", style: { fontSize: "0.85em" } });

  function show(state) {
    select.value = state.mode;
    select.disabled = state.locked;
    setMessage(note, state.locked ? t("mode.pinned") : "", "muted");
    onModeChange(state.mode);
  }

  select.addEventListener("change", async () => {
    const answer = await call("POST", "/runflow/mode", { mode: select.value });
    if (!answer.ok) return setMessage(note, errorText(answer, t), "error");
    show(answer.data);
    toast({ severity: "info", summary: t("mode.changed", { mode: modeName(answer.data.mode, t) }), life: 3000 });
  });
  call("GET", "/runflow/mode").then((answer) => (answer.ok ? show(answer.data) : setMessage(note, errorText(answer, t), "error")));
  return h("div", { className: "runflow-mode", style: COLUMN }, select, note);
}

/** What the pack has spent: this ComfyUI session and all time (from the server's ledger). */
export function spendTotals({ call, t }) {
  const text = h("div", { className: "runflow-spend", style: { ...COLUMN, fontSize: "0.9em" } }, t("spend.loading"));
  call("GET", "/runflow/ledger").then((answer) => {
    if (!answer.ok) return setMessage(text, errorText(answer, t), "error");
    const { session_runs, session_cost, all_runs, all_cost } = answer.data;
    text.textContent = t("spend.totals", {
      sessionRuns: session_runs, sessionCost: formatUsd(session_cost), allRuns: all_runs, allCost: formatUsd(all_cost),
    });
  });
  return text;
}
