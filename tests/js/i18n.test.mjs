import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { fallbackChain, format, imagesLabel, translator } from "../../web/lib/i18n.js";
import { MESSAGES } from "../../web/lib/messages.js";
import { priceBadgeText } from "../../web/lib/money.js";
import { CATEGORIES, SETTING_TEXT, settingKey } from "../../web/lib/settings_text.js";
import { parseStatus, runSummaryText, statusText } from "../../web/lib/status.js";

const locale = (lang, name) => JSON.parse(readFileSync(new URL(`../../locales/${lang}/${name}`, import.meta.url)));
const bundles = Object.fromEntries(["en", "zh", "ja"].map((lang) => [lang, locale(lang, "main.json")]));

test("locales/en carries exactly the strings the code shows", () => {
  assert.deepEqual(bundles.en.runflow, MESSAGES);
  assert.deepEqual(bundles.en.settingsCategories, Object.fromEntries(Object.values(CATEGORIES).map((c) => [c, c])));
  const settings = Object.fromEntries(Object.entries(SETTING_TEXT).map(([id, text]) => [settingKey(id), text]));
  assert.deepEqual(locale("en", "settings.json"), settings);
});

test("a language falls back to its base language, then English, then the key", () => {
  assert.deepEqual(fallbackChain("zh-TW"), ["zh-TW", "zh", "en"]);
  assert.deepEqual(fallbackChain(""), ["en"]);
  const t = translator({ zh: { runflow: { key: { save: "保存" } } } }, "zh-TW");
  assert.equal(t("key.save"), "保存");
  assert.equal(t("key.clear"), "Clear");
  assert.equal(t("no.such.key"), "no.such.key");
});

test("placeholders are filled, unknown ones left visible", () => {
  assert.equal(format("{a} and {b}", { a: 1 }), "1 and {b}");
});

test("the badge, the live status and the summary read in Chinese and Japanese", () => {
  const zh = translator(bundles, "zh");
  const ja = translator(bundles, "ja");
  assert.equal(priceBadgeText({ perImage: "0.27", count: 4 }, zh), "4 张图像 · $1.08");
  assert.equal(priceBadgeText({ perImage: "0.27" }, ja), "$0.27 / 枚");
  assert.equal(imagesLabel(1, ja), "1 枚");
  const status = parseStatus({ node: 7, total: 8, done: 3, running: 2, queued: 3, cost: "0.81", elapsed_s: 12.3 });
  assert.equal(statusText(status, zh), "已完成 3/8 · 2 个运行中 · 3 个排队中 · 12s · $0.81");
  assert.equal(statusText(status), "3/8 done · 2 running · 3 queued · 12s · $0.81");
  const summary = { images: 4, paid_runs: 3, cached: 1, cost: "0.81", elapsed_s: 12.3, emulator: false, session_cost: null };
  assert.equal(runSummaryText(summary, ja), "4 枚 · 12.3s · $0.81 · 1 件キャッシュ済み");
  assert.equal(runSummaryText({ ...summary, cached: 0, resumed: 1 }), "4 images · 12.3s · $0.81 · 1 resumed");
});

test("the live status in English matches the server's own line", () => {
  const status = parseStatus({ node: 1, total: 2, done: 1, cached: 1, waiting: 1, emulator: true, elapsed_s: 4 });
  // runflow_api.progress.TallySnapshot.status_line() for the same counts
  assert.equal(statusText(status), "2/2 done · 1 waiting for another process · 1 cached · 4s · emulator, $0.00");
});

test("the fleet's counts read in Chinese and Japanese", () => {
  const status = parseStatus({ node: 1, total: 4, done: 0, cached: 3, shared: 1, waited_for_machine: 2, waiting: 1,
    waiting_for_machine: 1, cost: "0.00", elapsed_s: 2 });
  assert.equal(statusText(status, translator(bundles, "zh")),
    "已完成 3/4 · 1 个等待其他机器 · 3 个已缓存（1 个来自共享存储，2 个等待其他机器后取得） · 2s · $0.00");
  assert.equal(statusText(status, translator(bundles, "ja")),
    "3/4 完了 · 1 件が他のマシンを待機中 · 3 件キャッシュ済み（共有ストアから 1 件、他のマシンの待機後に 2 件） · 2s · $0.00");
});
