import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { callbacksNote } from "../../web/lib/callbacks.js";
import { translator } from "../../web/lib/i18n.js";
import { sharedStoreView } from "../../web/lib/shared_store.js";

const bundles = Object.fromEntries(["en", "zh", "ja"].map((lang) => [lang,
  JSON.parse(readFileSync(new URL(`../../locales/${lang}/main.json`, import.meta.url)))]));

// GET /runflow/shared-store's answers (routes.shared_store_status).
const CONNECTED = {
  configured: true, url: "redis://127.0.0.1:6379/0 (password set)", connected: true, problem: null,
  team_budget: "50", today: { spent: "4.05", reserved: "0.27", fleet: true },
};
const DOWN = {
  configured: true, url: "redis://redis.internal:6379/0 (password set)", connected: false,
  problem: "ConnectionError: Error 111 connecting", team_budget: null, today: { spent: "0.54", reserved: "0.00", fleet: false },
};

test("no shared store: one line naming the variable that sets it", () => {
  const view = sharedStoreView({ configured: false });
  assert.equal(view.tone, "muted");
  assert.equal(view.lines.length, 1);
  assert.match(view.lines[0], /Not configured/);
  assert.match(view.lines[0], /RUNFLOW_SHARED_STORE/);
  assert.deepEqual(sharedStoreView(null), view);
});

test("a connected store: the masked address, the fleet's spend of the budget and what is reserved", () => {
  assert.deepEqual(sharedStoreView(CONNECTED), { tone: "ok", lines: [
    "redis://127.0.0.1:6379/0 (password set): connected",
    "Today (UTC), whole fleet: $4.05 of $50.00 spent · $0.27 reserved",
  ] });
});

test("an unreachable store: the problem, and that the spend is this machine's only", () => {
  const [head, problem, today] = sharedStoreView(DOWN).lines;
  assert.equal(sharedStoreView(DOWN).tone, "warn");
  assert.equal(head, "redis://redis.internal:6379/0 (password set): unreachable");
  assert.equal(problem, DOWN.problem);
  assert.equal(today, "Today (UTC), this machine only (the shared store is unreachable): $0.54 spent");
});

test("a store that cannot be used at all (no redis package) says so and why", () => {
  const problem = "RUNFLOW_SHARED_STORE is set, but the redis package is not installed: pip install redis.";
  const view = sharedStoreView({ configured: true, connected: false, problem });
  assert.equal(view.tone, "warn");
  assert.deepEqual(view.lines, ["Set, but unusable", problem]);
});

test("the shared store reads in Chinese and Japanese", () => {
  const zh = sharedStoreView(CONNECTED, translator(bundles, "zh")).lines;
  assert.equal(zh[0], "redis://127.0.0.1:6379/0 (password set)：已连接");
  assert.equal(zh[1], "今天（UTC），整个机群：已花费 $4.05（预算 $50.00） · 已预留 $0.27");
  const ja = sharedStoreView(DOWN, translator(bundles, "ja")).lines;
  assert.equal(ja[0], "redis://redis.internal:6379/0 (password set)：接続できません");
  assert.match(ja[2], /このマシンのみ/);
  assert.match(sharedStoreView({ configured: false }, translator(bundles, "ja")).lines[0], /RUNFLOW_SHARED_STORE/);
});

// GET /runflow/callback-secret's answers (routes.callback_status).
const secret = (fields) => ({ configured: false, masked: null, source: null, public_url: null, active: false, error: null, ...fields });

test("callbacks are on only with both the secret and the public URL", () => {
  const on = callbacksNote(secret({ configured: true, source: "file", public_url: "https://comfy.example.com", active: true }));
  assert.deepEqual(on, { text: "Callbacks are on: Runflow reports finished runs to https://comfy.example.com/runflow/callback.", tone: "ok" });
});

test("the line says which half is missing", () => {
  assert.match(callbacksNote(secret({ configured: true, source: "file" })).text, /off: set RUNFLOW_PUBLIC_URL/);
  const noSecret = callbacksNote(secret({ public_url: "https://comfy.example.com" })).text;
  assert.match(noSecret, /until a secret is saved here/);
  assert.match(noSecret, /https:\/\/comfy\.example\.com/);
  const neither = callbacksNote(secret({})).text;
  assert.match(neither, /this secret and RUNFLOW_PUBLIC_URL/);
  for (const text of [noSecret, neither]) assert.match(text, /polled/);
});

test("an unusable setting is shown as the server words it", () => {
  const note = callbacksNote(secret({ configured: true, error: "RUNFLOW_PUBLIC_URL 'ftp://x' is not a usable base URL" }));
  assert.equal(note.tone, "warn");
  assert.equal(note.text, "Callbacks are off: RUNFLOW_PUBLIC_URL 'ftp://x' is not a usable base URL");
  assert.deepEqual(callbacksNote(null), { text: "", tone: "muted" });
});

test("the callbacks line reads in Chinese and Japanese", () => {
  const on = secret({ configured: true, public_url: "https://c.example", active: true });
  assert.equal(callbacksNote(on, translator(bundles, "zh")).text, "回调已开启：Runflow 会把运行结束的通知发送到 https://c.example/runflow/callback。");
  assert.match(callbacksNote(secret({}), translator(bundles, "ja")).text, /^コールバックは無効です/);
});
