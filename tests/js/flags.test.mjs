import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { translator } from "../../web/lib/i18n.js";
import { flaggedText, parseRunSummary, runSummaryText, summaryTone } from "../../web/lib/status.js";

const RUN = { images: 4, paid_runs: 4, cost: "0.00", elapsed_s: 2, cached: 0, emulator: true };

test("the last run names how many images are flagged, and with which flags", () => {
  const summary = parseRunSummary({ runflow: [{ ...RUN, flagged: 3, flags: { empty: 2, cut_off: 1 } }] });
  assert.equal(flaggedText(summary), "3 flagged (2 empty, cut_off)");
  assert.equal(runSummaryText(summary), "4 images · 2.0s · free (emulator) · 3 flagged (2 empty, cut_off)");
  assert.equal(summaryTone(summary), "warn");
});

test("an unflagged run, or one from a server without flags, reads as before", () => {
  for (const entry of [{ ...RUN, flagged: 0, flags: {} }, RUN]) {
    const summary = parseRunSummary({ runflow: [entry] });
    assert.equal(flaggedText(summary), "");
    assert.equal(runSummaryText(summary), "4 images · 2.0s · free (emulator)");
    assert.equal(summaryTone(summary), "done");
  }
});

test("junk in the flags payload is dropped, never shown", () => {
  const flags = { empty: "2", "<img src=x>": 1, soft: -1, tiny: "x" };
  const summary = parseRunSummary({ runflow: [{ ...RUN, flagged: 2, flags }] });
  assert.deepEqual(summary.flags, [["empty", 2]]);
  assert.equal(parseRunSummary({ runflow: [{ ...RUN, flagged: 1, flags: ["empty"] }] }).flags.length, 0);
});

test("the flagged count reads in Japanese and Chinese", () => {
  const bundles = Object.fromEntries(["en", "ja", "zh"].map((lang) => [lang,
    JSON.parse(readFileSync(new URL(`../../locales/${lang}/main.json`, import.meta.url)))]));
  const summary = parseRunSummary({ runflow: [{ ...RUN, flagged: 1, flags: { fragments: 1 } }] });
  assert.equal(flaggedText(summary, translator(bundles, "ja")), "1 件に要確認フラグ（fragments）");
  assert.equal(flaggedText(summary, translator(bundles, "zh")), "1 个已标记（fragments）");
});
