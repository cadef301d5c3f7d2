/**
 * The extension's own tiny translator. ComfyUI serves every pack's locales/<lang>/main.json merged at
 * GET /i18n; the frontend translates node definitions and settings from it by itself, but offers
 * extensions no stable `t()` across versions (1.27 and 1.5x differ), so the strings this extension
 * draws are looked up here: the chosen language, then its base language (zh-TW -> zh), then English.
 */

import { MESSAGES } from "./messages.js";

function lookup(tree, key) {
  let node = tree;
  for (const part of key.split(".")) {
    if (!node || typeof node !== "object") return undefined;
    node = node[part];
  }
  return typeof node === "string" ? node : undefined;
}

/** "{count} images" with {count: 3} -> "3 images"; an unknown {name} stays as written. */
export function format(template, vars = {}) {
  return template.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}

/** The languages to try, most specific first: "zh-TW" -> ["zh-TW", "zh", "en"]. */
export function fallbackChain(locale) {
  const chain = [];
  const full = typeof locale === "string" ? locale.trim() : "";
  if (full) chain.push(full);
  const base = full.split(/[-_]/)[0];
  if (base && base !== full) chain.push(base);
  if (!chain.includes("en")) chain.push("en");
  return chain;
}

/**
 * `t(key, vars)` for `locale`, from `/i18n`'s answer ({lang: {runflow: {...}}}); English from
 * MESSAGES when a language or a key is missing, and the key itself as the last resort.
 */
export function translator(bundles = {}, locale = "en") {
  const trees = fallbackChain(locale).map((lang) => bundles?.[lang]?.runflow).filter(Boolean);
  trees.push(MESSAGES);
  return (key, vars) => {
    for (const tree of trees) {
      const template = lookup(tree, key);
      if (template !== undefined) return format(template, vars);
    }
    return key;
  };
}

/** English, for callers (and tests) that do not pass a translator. */
export const english = translator();

/** "1 image" / "4 images" in the translator's language. */
export function imagesLabel(count, t = english) {
  return t(count === 1 ? "images_one" : "images_other", { count });
}
