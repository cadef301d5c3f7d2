/**
 * Every English string the extension shows in the browser, by key: the source for the translations in
 * locales/<lang>/main.json ("runflow" namespace), which ComfyUI serves merged at GET /i18n.
 * locales/en/main.json carries the same tree (tests/js/i18n.test.mjs keeps them equal), so translators
 * work from one file per language. `{name}` marks a value filled in at run time.
 */

export const MESSAGES = Object.freeze({
  images_one: "{count} image",
  images_other: "{count} images",
  badge: {
    perImage: "{price} / image",
    batch: "{images} · {price}",
    free: "free (emulator)",
    batchFree: "{images} · free (emulator)",
  },
  status: {
    progress: "{finished}/{total} done",
    running: "{count} running",
    queued: "{count} queued",
    waiting: "{count} waiting for another process",
    cached: "{count} cached",
    resumed: "{count} resumed",
    failed: "{count} failed",
    emulator: "emulator",
    lastRun: "Last run: {summary}",
    free: "free (emulator)",
    session: "session {cost}",
    idle: "Not run yet",
  },
  key: {
    none: "No key set. Paste your Runflow API key (rf_live_…) and press Save.",
    env: "Using {masked} from the environment variable RUNFLOW_API_KEY (change it where ComfyUI starts).",
    saved: "Saved on the server: {masked}",
    checking: "Checking…",
    placeholder: "Paste a new key (rf_live_…)",
    save: "Save",
    clear: "Clear",
    empty: "Paste a key first.",
    badCharacters: "A key has only letters, digits and '_' (no spaces or quotes).",
    tooShort: "That is too short to be a Runflow key.",
    savedMessage: "Key saved on the server (file mode 0600). Use Test connection to check it.",
    savedToast: "Runflow key saved",
    removed: "Stored key removed.",
    neededTitle: "Runflow key needed",
    neededDetail: "Set your Runflow key in Settings > Runflow (or switch the service to the offline emulator there).",
  },
  test: {
    button: "Test connection",
    testing: "Testing…",
    connected: "Connected to {where}",
    failed: "Connection failed",
    noAnswer: "No answer from the server.",
    signedIn: "Signed in as {user}",
    balance: "Balance: {balance}",
    balanceMissing: "Balance not available: {reason}",
    reasons: {
      missing_key: "No key set",
      invalid_config: "Key or address malformed",
      unauthorized: "Key refused",
      forbidden: "Permission denied",
      insufficient_credit: "Balance used up",
      rate_limited: "Rate limited",
      service_unavailable: "Service unavailable",
      api_error: "Service error",
      network_error: "Cannot reach Runflow",
      timeout: "Timed out",
    },
  },
  mode: {
    runflow: "Runflow",
    emulator: "offline emulator",
    optionRunflow: "Runflow (paid per image)",
    optionEmulator: "Offline emulator (free, stand-in results)",
    pinned: "Pinned by the RUNFLOW_MODE environment variable.",
    changed: "Runflow service: {mode}",
  },
  spend: {
    loading: "Loading…",
    totals: "This session: {sessionRuns} paid runs, {sessionCost} · All time: {allRuns} paid runs, {allCost}",
  },
  server: {
    answered: "The server answered {status}.",
    unreachable: "Could not reach ComfyUI: {error}",
  },
});
