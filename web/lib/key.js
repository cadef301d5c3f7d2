/** What the key field shows. The browser only ever holds the masked form the server sends back. */

/** The status line under the key field, from `GET /runflow/key`'s `{configured, masked, source}`. */
export function keyStatusText(status) {
  if (!status || !status.configured) return "No key set. Paste your Runflow API key (rf_live_…) and press Save.";
  if (status.source === "env") {
    return `Using ${status.masked} from the environment variable RUNFLOW_API_KEY (change it where ComfyUI starts).`;
  }
  return `Saved on the server: ${status.masked}`;
}

/** The browser can save or clear the key unless the environment supplies it (that one always wins). */
export function keyEditable(status) {
  return !status || status.source !== "env";
}

/** A quick local check before sending, mirroring the server's rule; the server still decides. */
export function keyInputProblem(text) {
  const key = (text ?? "").trim();
  if (!key) return "Paste a key first.";
  if (!/^[A-Za-z0-9_]+$/.test(key)) return "A key has only letters, digits and '_' (no spaces or quotes).";
  if (key.length < 12) return "That is too short to be a Runflow key.";
  return null;
}
