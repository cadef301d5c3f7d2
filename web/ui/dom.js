/** A tiny element builder for the settings widgets (the settings panel takes plain DOM elements). */

export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name === "style") Object.assign(element.style, value);
    else if (name.startsWith("on")) element.addEventListener(name.slice(2).toLowerCase(), value);
    else if (name in element) element[name] = value;
    else element.setAttribute(name, value);
  }
  element.append(...children.filter((child) => child !== null && child !== undefined && child !== false));
  return element;
}

/** A button styled like the rest of ComfyUI's settings (PrimeVue classes are already on the page). */
export function button(label, onClick, { secondary = false, name = "" } = {}) {
  const classes = ["p-button", "p-component", "p-button-sm", name];
  if (secondary) classes.push("p-button-secondary", "p-button-outlined");
  return h("button", { type: "button", className: classes.join(" ").trim(), onClick }, label);
}

/** The error an answer from the pack's routes carries, or what the server answered when it carries none. */
export function errorText(answer, t) {
  return answer.data?.error?.message ?? t("server.answered", { status: answer.status });
}

/** A line of feedback under a control; `tone` picks the colour. */
export function setMessage(element, text, tone = "muted") {
  const colours = { muted: "var(--p-text-muted-color, #999)", ok: "#4ade80", error: "#f87171", warn: "#fbbf24" };
  element.textContent = text;
  element.style.color = colours[tone] ?? colours.muted;
}

export const COLUMN = { display: "flex", flexDirection: "column", gap: "6px", width: "26rem", maxWidth: "100%" };
export const ROW = { display: "flex", gap: "6px", alignItems: "center" };
