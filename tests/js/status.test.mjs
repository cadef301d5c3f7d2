import assert from "node:assert/strict";
import { test } from "node:test";

import {
  formatDuration,
  parseRunSummary,
  parseStatus,
  runSummaryText,
  statusFraction,
  statusText,
  statusTone,
} from "../../web/lib/status.js";

const LIVE = {
  node: "7", text: "3/8 done · 2 running · 3 queued · 12s · $0.81", total: 8, done: 3, cached: 0, resumed: 0,
  failed: 0, queued: 3, running: 2, cost: "0.81", elapsed_s: 12.3, emulator: false, final: false,
};

test("a status payload is parsed field by field", () => {
  const status = parseStatus(LIVE);
  assert.equal(status.node, "7");
  assert.equal(status.text, LIVE.text);
  assert.equal(status.total, 8);
  assert.equal(status.running, 2);
  assert.equal(status.cost, "0.81");
  assert.equal(status.final, false);
  assert.equal(status.emulator, false);
});

test("numeric node ids become strings and junk counts become 0", () => {
  const status = parseStatus({ node: 12, total: "x", done: -3, text: 5, final: "yes" });
  assert.equal(status.node, "12");
  assert.equal(status.total, 0);
  assert.equal(status.done, 0);
  assert.equal(status.text, "");
  assert.equal(status.final, false);
});

test("payloads without a node are not ours", () => {
  assert.equal(parseStatus(null), null);
  assert.equal(parseStatus("text"), null);
  assert.equal(parseStatus({ text: "hi" }), null);
});

test("progress fraction counts done, cached and failed items", () => {
  assert.equal(statusFraction(parseStatus(LIVE)), 3 / 8);
  assert.equal(statusFraction(parseStatus({ ...LIVE, done: 5, cached: 2, failed: 1 })), 1);
  assert.equal(statusFraction(parseStatus({ node: 1, total: 0 })), 0);
  assert.equal(statusFraction(null), 0);
});

test("tone follows the state", () => {
  assert.equal(statusTone(parseStatus(LIVE)), "running");
  assert.equal(statusTone(parseStatus({ ...LIVE, final: true })), "done");
  assert.equal(statusTone(parseStatus({ ...LIVE, failed: 1 })), "warn");
  assert.equal(statusTone(null), "idle");
});

test("durations", () => {
  assert.equal(formatDuration(12.34), "12.3s");
  assert.equal(formatDuration(0), "0.0s");
  assert.equal(formatDuration(125), "2m 05s");
  assert.equal(formatDuration(-1), "");
  assert.equal(formatDuration("x"), "");
});

test("the run summary from onExecuted", () => {
  const message = { runflow: [{ images: 4, paid_runs: 4, cost: "1.08", elapsed_s: 12.3, cached: 0, emulator: false }] };
  assert.equal(runSummaryText(parseRunSummary(message)), "4 images · 12.3s · $1.08");
});

test("cached images and the emulator are named in the summary", () => {
  const message = { runflow: [{ images: 4, paid_runs: 0, cost: "0.00", elapsed_s: 2, cached: 4, emulator: true }] };
  assert.equal(runSummaryText(parseRunSummary(message)), "4 images · 2.0s · free (emulator) · 4 cached");
});

test("the session's spend follows the run's cost", () => {
  const message = { runflow: [{ images: 2, paid_runs: 2, cost: "0.54", elapsed_s: 3, cached: 0, emulator: false,
    session_cost: "1.35" }] };
  assert.equal(runSummaryText(parseRunSummary(message)), "2 images · 3.0s · $0.54 · session $1.35");
});

test("messages without runflow data give no summary", () => {
  assert.equal(parseRunSummary({ images: [] }), null);
  assert.equal(parseRunSummary(undefined), null);
  assert.equal(parseRunSummary({ runflow: [] }), null);
  assert.equal(runSummaryText(null), "");
});

// runflow.status with the fleet's counts (node_machinery/feedback.py): parts of `waiting` and of `cached`.
const FLEET = {
  node: "9", total: 10, done: 2, cached: 4, resumed: 0, failed: 0, queued: 1, running: 0, waiting: 3,
  waiting_for_machine: 2, shared: 1, waited_for_machine: 2, cost: "0.54", elapsed_s: 7.4, emulator: false, final: false,
};

test("the fleet's counts are parsed, and a part never exceeds its whole", () => {
  const status = parseStatus(FLEET);
  assert.deepEqual([status.waiting_for_machine, status.shared, status.waited_for_machine], [2, 1, 2]);
  const odd = parseStatus({ node: 1, waiting: 1, waiting_for_machine: 5, cached: 0, shared: 2, waited_for_machine: "x" });
  assert.deepEqual([odd.waiting_for_machine, odd.shared, odd.waited_for_machine], [1, 0, 0]);
  const old = parseStatus(LIVE); // a server from before the fleet sends none of them
  assert.deepEqual([old.waiting_for_machine, old.shared, old.waited_for_machine], [0, 0, 0]);
});

test("waiting for another machine is told apart from waiting for another process", () => {
  assert.equal(statusText(parseStatus(FLEET)),
    "6/10 done · 1 queued · 1 waiting for another process · 2 waiting for another machine · " +
    "4 cached (1 shared, 2 after waiting for another machine) · 7s · $0.54");
  const allMachine = parseStatus({ ...FLEET, waiting: 2, cached: 0, shared: 0, waited_for_machine: 0 });
  assert.equal(statusText(allMachine), "2/10 done · 1 queued · 2 waiting for another machine · 7s · $0.54");
});

test("the cached count names only the fleet sources there are", () => {
  const only = (fields) => statusText(parseStatus({ node: 1, total: 3, cached: 3, elapsed_s: 1, emulator: true, ...fields }));
  assert.equal(only({}), "3/3 done · 3 cached · 1s · emulator, $0.00");
  assert.equal(only({ shared: 3 }), "3/3 done · 3 cached (3 shared) · 1s · emulator, $0.00");
  assert.equal(only({ waited_for_machine: 1 }), "3/3 done · 3 cached (1 after waiting for another machine) · 1s · emulator, $0.00");
});
