/**
 * The English names and tooltips of the pack's settings, and the settings panel's category labels: the
 * source of locales/en/settings.json and of main.json's "settingsCategories" (tests/js/i18n.test.mjs
 * keeps them equal). ComfyUI's frontend translates both itself, by setting id (dots become "_").
 */

export const CATEGORIES = Object.freeze({
  root: "Runflow", account: "Account", server: "Callbacks and fleet", defaults: "Defaults for new nodes",
});

export const SETTING_TEXT = Object.freeze({
  "Runflow.ApiKey": {
    name: "API key",
    tooltip:
      "Stored on the ComfyUI server in a file only you can read (mode 0600), never in ComfyUI's settings or workflows. " +
      "The RUNFLOW_API_KEY environment variable, when set, takes precedence.",
  },
  "Runflow.TestConnection": {
    name: "Test connection",
    tooltip: "Asks the selected service who the key belongs to, its scopes and the balance. Costs nothing.",
  },
  "Runflow.Mode": {
    name: "Service",
    tooltip: "The offline emulator runs inside ComfyUI: free, no key needed, plausible fake results for building graphs.",
  },
  "Runflow.Spend": {
    name: "Spending",
    tooltip: "Paid runs recorded by this ComfyUI (emulator runs are free and not counted).",
  },
  "Runflow.SharedStore": {
    name: "Shared store (fleet)",
    tooltip:
      "The Redis that several machines share for results, in-flight work and the team budget. Set only by the " +
      "RUNFLOW_SHARED_STORE environment variable where ComfyUI starts; shown here masked, never editable.",
  },
  "Runflow.CallbackSecret": {
    name: "Callback secret",
    tooltip:
      "Checks that run-ended callbacks really come from Runflow. Stored on the ComfyUI server in a file only you " +
      "can read (mode 0600), never in ComfyUI's settings or workflows. RUNFLOW_CALLBACK_SECRET, when set, takes " +
      "precedence. Callbacks also need RUNFLOW_PUBLIC_URL.",
  },
  "Runflow.DefaultConcurrency": {
    name: "Images in flight at once",
    tooltip: "How many images of a batch a new node sends to Runflow at the same time.",
  },
  "Runflow.DefaultSpendLimit": {
    name: "Spend limit per run ($)",
    tooltip: "A new node refuses to start an execution whose new runs would cost more than this. 0 means no limit.",
  },
});

/** locales/<lang>/settings.json's key for a setting id. */
export function settingKey(id) {
  return id.replaceAll(".", "_");
}
