import { english, imagesLabel } from "./i18n.js";

/**
 * Money as the server sends it: decimal strings like "0.27". Sums are done in integer cents so that
 * 4 × 0.27 shows as $1.08 and never as $1.0800000000000001.
 */

/** Integer cents from "0.27", 0.27 or 27n-free input; null for anything that is not an amount. */
export function toCents(value) {
  if (value === null || value === undefined || value === "") return null;
  const text = String(value).trim();
  if (!/^-?\d+(\.\d+)?$/.test(text)) return null;
  const negative = text.startsWith("-");
  const [whole, fraction = ""] = text.replace("-", "").split(".");
  const cents = Number(whole) * 100 + Math.round(Number(`0.${fraction || "0"}`) * 100);
  return negative ? -cents : cents;
}

/** "$1.08" from cents; "" when unknown. */
export function formatCents(cents) {
  if (cents === null || cents === undefined || !Number.isFinite(cents)) return "";
  const sign = cents < 0 ? "-" : "";
  const abs = Math.abs(Math.round(cents));
  const dollars = Math.floor(abs / 100).toLocaleString("en-US");
  return `${sign}$${dollars}.${String(abs % 100).padStart(2, "0")}`;
}

/** "$1.08" from a decimal string or number; "" when it is not an amount. */
export function formatUsd(value) {
  return formatCents(toCents(value));
}

export { imagesLabel };

/**
 * The price badge on an isolation node: the unit price, or what the known batch would cost.
 * The emulator is free, and the badge says so, so nobody mistakes an offline test for spending.
 */
export function priceBadgeText({ perImage, count = null, emulator = false }, t = english) {
  const known = Number.isInteger(count) && count > 0;
  if (emulator) return known ? t("badge.batchFree", { images: imagesLabel(count, t) }) : t("badge.free");
  const unit = toCents(perImage);
  if (unit === null) return "";
  if (!known) return t("badge.perImage", { price: formatCents(unit) });
  return t("badge.batch", { images: imagesLabel(count, t), price: formatCents(unit * count) });
}
