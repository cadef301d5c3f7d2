/**
 * How many images will reach an isolation node, worked out from the graph before anything runs, so the
 * price badge can show what a run would cost. Only node types whose count is certain are followed;
 * anything else gives null and the badge falls back to the unit price.
 *
 * A node is described as {type, widgets: {name: value}, inputs: {name: description | null}}, built by
 * the extension from the live graph, so this stays a pure function.
 */

const MAX_DEPTH = 16;

function positive(value) {
  const n = Number(value);
  return Number.isInteger(n) && n > 0 ? n : null;
}

const RULES = {
  LoadImage: () => 1,
  LoadImageOutput: () => 1,
  EmptyImage: (node) => positive(node.widgets?.batch_size),
  RepeatImageBatch: (node, upstream) => {
    const inner = upstream("image");
    const amount = positive(node.widgets?.amount);
    return inner && amount ? inner * amount : null;
  },
  ImageBatch: (node, upstream) => {
    const a = upstream("image1");
    const b = upstream("image2");
    return a && b ? a + b : null;
  },
  ImageFromBatch: (node, upstream) => {
    const inner = upstream("image");
    const start = Number(node.widgets?.batch_index ?? 0);
    const length = positive(node.widgets?.length);
    return inner && length ? Math.max(0, Math.min(length, inner - start)) || null : null;
  },
};

/** The number of images a node outputs, or null when it cannot be known before running. */
export function estimateImageCount(node, depth = 0) {
  if (!node || depth > MAX_DEPTH) return null;
  const rule = RULES[node.type];
  if (!rule) return null;
  return rule(node, (name) => estimateImageCount(node.inputs?.[name] ?? null, depth + 1));
}

/** The number of non-empty lines in a text widget (one URL per line), or null when there are none. */
export function countLines(text) {
  const lines = String(text ?? "")
    .split(/\r?\n/)
    .filter((line) => line.trim());
  return lines.length || null;
}
