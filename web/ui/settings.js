/**
 * The Runflow settings that are not plain values: the key field, the connection test, the service switch
 * and the spend totals. Each renders its own element and talks to the pack's routes; none of them ever
 * calls the setting's setter, so ComfyUI's settings file (readable by anyone who reaches the server) never
 * holds the key or anything derived from it.
 *
 * `call(method, path, body)` resolves to {ok, status, data}; `toast(options)` shows a ComfyUI toast;
 * `t(key, vars)` gives the user's language (lib/i18n.js).
 */

import { describeTest, modeName } from "../lib/connection.js";
import { keyEditable, keyInputProblem, keyStatusText } from "../lib/key.js";
import { formatUsd } from "../lib/money.js";
import { COLUMN, ROW, button, h, setMessage } from "./dom.js";

function errorText(answer, t) {
  return answer.data?.error?.message ?? t("server.answered", { status: answer.status });
}

/** Status + password input + Save / Clear. The input is emptied as soon as the key is sent. */
export function keyField({ call, toast, t }) {
  const status = h("div", { className: "runflow-key-status", style: { fontWeight: "600" } }, t("key.checking"));
  const input = h("input", {
    type: "password",
    className: "p-inputtext p-component runflow-key-input",
    placeholder: t("key.placeholder"),
    autocomplete: "off",
    spellcheck: false,
    style: { flex: "1", minWidth: "0" },
  });
  const message = h("div", { className: "runflow-key-message", style: { fontSize: "0.85em" } });
  const save = button(t("key.save"), () => submit(), { name: "runflow-key-save" });
  const clear = button(t("key.clear"), () => remove(), { secondary: true, name: "runflow-key-clear" });

  function show(state) {
    status.textContent = keyStatusText(state, t);
    const editable = keyEditable(state);
    for (const control of [input, save, clear]) control.disabled = !editable;
    clear.disabled = !editable || !state?.configured;
  }

  async function refresh() {
    const answer = await call("GET", "/runflow/key");
    if (answer.ok) show(answer.data);
    else setMessage(message, errorText(answer, t), "error");
  }

  async function submit() {
    const problem = keyInputProblem(input.value, t);
    if (problem) return setMessage(message, problem, "error");
    const key = input.value.trim();
    input.value = "";
    const answer = await call("POST", "/runflow/key", { key });
    if (!answer.ok) return setMessage(message, errorText(answer, t), "error");
    show(answer.data);
    setMessage(message, t("key.savedMessage"), "ok");
    toast({ severity: "success", summary: t("key.savedToast"), detail: answer.data.masked, life: 4000 });
  }

  async function remove() {
    const answer = await call("DELETE", "/runflow/key", {});
    if (!answer.ok) return setMessage(message, errorText(answer, t), "error");
    show(answer.data);
    setMessage(message, t("key.removed"), "ok");
  }

  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") submit();
  });
  refresh();
  return h("div", { className: "runflow-key-field", style: COLUMN }, status, h("div", { style: ROW }, input, save, clear), message);
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
