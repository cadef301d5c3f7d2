import assert from "node:assert/strict";
import { test } from "node:test";

import { formatCents, formatUsd, imagesLabel, priceBadgeText, toCents } from "../../web/lib/money.js";

test("decimal strings become exact cents", () => {
  assert.equal(toCents("0.27"), 27);
  assert.equal(toCents("1.08"), 108);
  assert.equal(toCents("12"), 1200);
  assert.equal(toCents("0.5"), 50);
  assert.equal(toCents(0.27), 27);
  assert.equal(toCents("-1.50"), -150);
});

test("things that are not amounts give null", () => {
  for (const value of [null, undefined, "", "abc", "1.2.3", "$1", "NaN"]) assert.equal(toCents(value), null, String(value));
});

test("formatting", () => {
  assert.equal(formatCents(108), "$1.08");
  assert.equal(formatCents(5), "$0.05");
  assert.equal(formatCents(123456789), "$1,234,567.89");
  assert.equal(formatCents(-150), "-$1.50");
  assert.equal(formatCents(null), "");
  assert.equal(formatUsd("1000000.00"), "$1,000,000.00");
  assert.equal(formatUsd("bad"), "");
});

test("batch prices are summed in cents, without float noise", () => {
  assert.equal(priceBadgeText({ perImage: "0.27", count: 4 }), "4 images · $1.08");
  assert.equal(priceBadgeText({ perImage: "0.27", count: 3 }), "3 images · $0.81");
  assert.equal(priceBadgeText({ perImage: "0.27", count: 1 }), "1 image · $0.27");
  assert.equal(priceBadgeText({ perImage: "0.27", count: 1000 }), "1000 images · $270.00");
});

test("unknown batch size shows the unit price", () => {
  assert.equal(priceBadgeText({ perImage: "0.27" }), "$0.27 / image");
  assert.equal(priceBadgeText({ perImage: "0.27", count: null }), "$0.27 / image");
  assert.equal(priceBadgeText({ perImage: "0.27", count: 0 }), "$0.27 / image");
  assert.equal(priceBadgeText({ perImage: "0.27", count: 2.5 }), "$0.27 / image");
});

test("the emulator badge says it is free", () => {
  assert.equal(priceBadgeText({ perImage: "0.27", emulator: true }), "free (emulator)");
  assert.equal(priceBadgeText({ perImage: "0.27", count: 4, emulator: true }), "4 images · free (emulator)");
});

test("no price, no badge", () => {
  assert.equal(priceBadgeText({ perImage: null }), "");
});

test("image labels", () => {
  assert.equal(imagesLabel(1), "1 image");
  assert.equal(imagesLabel(2), "2 images");
});
