import assert from "node:assert/strict";
import { test } from "node:test";

import { countLines, estimateImageCount } from "../../web/lib/batch.js";

const load = { type: "LoadImage", widgets: { image: "shoe.png" }, inputs: {} };

test("a loaded image is one image", () => {
  assert.equal(estimateImageCount(load), 1);
});

test("batch-making nodes multiply and add", () => {
  assert.equal(estimateImageCount({ type: "EmptyImage", widgets: { batch_size: 3 }, inputs: {} }), 3);
  assert.equal(estimateImageCount({ type: "RepeatImageBatch", widgets: { amount: 4 }, inputs: { image: load } }), 4);
  const two = { type: "ImageBatch", widgets: {}, inputs: { image1: load, image2: load } };
  assert.equal(estimateImageCount(two), 2);
  assert.equal(estimateImageCount({ type: "RepeatImageBatch", widgets: { amount: 3 }, inputs: { image: two } }), 6);
  assert.equal(estimateImageCount({ type: "ImageFromBatch", widgets: { batch_index: 1, length: 5 },
    inputs: { image: { type: "EmptyImage", widgets: { batch_size: 4 }, inputs: {} } } }), 3);
});

test("unknown or unconnected upstream gives null", () => {
  assert.equal(estimateImageCount(null), null);
  assert.equal(estimateImageCount({ type: "VAEDecode", widgets: {}, inputs: {} }), null);
  assert.equal(estimateImageCount({ type: "RepeatImageBatch", widgets: { amount: 4 }, inputs: { image: null } }), null);
  assert.equal(estimateImageCount({ type: "EmptyImage", widgets: { batch_size: 0 }, inputs: {} }), null);
});

test("a cycle or a very deep chain stops", () => {
  const loop = { type: "RepeatImageBatch", widgets: { amount: 2 }, inputs: {} };
  loop.inputs.image = loop;
  assert.equal(estimateImageCount(loop), null);
});

test("one URL per non-empty line", () => {
  assert.equal(countLines("https://a/1.jpg\n\n  https://a/2.jpg \r\n"), 2);
  assert.equal(countLines(""), null);
  assert.equal(countLines(undefined), null);
});
