import assert from "node:assert/strict";
import { test } from "node:test";

import { describeTest, modeName, orgLines } from "../../web/lib/connection.js";
import { KEY_ERROR_TOAST, isKeyError } from "../../web/lib/errors.js";
import { CREDENTIALS, credentialEditable, credentialStatusText, keyInputProblem, secretInputProblem }
  from "../../web/lib/credentials.js";
import { isIsolationNode, isRunflowNode } from "../../web/lib/nodes.js";

const { key: KEY, callbackSecret: SECRET } = CREDENTIALS;

test("key status text shows only the masked form and the source", () => {
  assert.match(credentialStatusText(KEY, { configured: false, masked: null, source: null }), /No key set/);
  assert.equal(credentialStatusText(KEY, { configured: true, masked: "rf_live_…1234", source: "file" }),
    "Saved on the server: rf_live_…1234");
  assert.match(credentialStatusText(KEY, { configured: true, masked: "rf_live_…1234", source: "env" }), /RUNFLOW_API_KEY/);
});

test("the callback secret's status names its own variable and form", () => {
  assert.match(credentialStatusText(SECRET, { configured: false, masked: null, source: null }), /No callback secret/);
  assert.equal(credentialStatusText(SECRET, { configured: true, masked: "whsec_…abcd", source: "file" }),
    "Saved on the server: whsec_…abcd");
  const env = credentialStatusText(SECRET, { configured: true, masked: "whsec_…abcd", source: "env" });
  assert.match(env, /RUNFLOW_CALLBACK_SECRET\b/);
  assert.match(env, /whsec_…abcd/);
});

test("each credential goes to its own route under its own body member", () => {
  assert.deepEqual([KEY.route, KEY.field], ["/runflow/key", "key"]);
  assert.deepEqual([SECRET.route, SECRET.field], ["/runflow/callback-secret", "secret"]);
  assert.notEqual(KEY.className, SECRET.className);
});

test("an environment credential cannot be edited from the browser", () => {
  assert.equal(credentialEditable({ configured: true, source: "env" }), false);
  assert.equal(credentialEditable({ configured: true, source: "file" }), true);
  assert.equal(credentialEditable({ configured: false, source: null }), true);
  assert.equal(credentialEditable(null), true);
});

test("a callback secret is checked like the server does before it is sent", () => {
  assert.equal(secretInputProblem("  whsec_0123456789abcdef\n"), null);
  assert.equal(secretInputProblem("x".repeat(256)), null);
  assert.match(secretInputProblem(""), /Paste a secret/);
  assert.match(secretInputProblem("whsec_short"), /16 to 256/);
  assert.match(secretInputProblem("whsec_0123 456789abcdef"), /without spaces/);
  assert.match(secretInputProblem("x".repeat(257)), /16 to 256/);
  assert.match(secretInputProblem("whsec_0123456789abcdé"), /printable/);
});

test("obvious input problems are caught before sending", () => {
  assert.equal(keyInputProblem("  rf_live_abcdef123456  "), null);
  assert.match(keyInputProblem(""), /Paste/);
  assert.match(keyInputProblem("rf_live abc def ghi"), /letters, digits/);
  assert.match(keyInputProblem('"rf_live_abcdef123456"'), /letters, digits/);
  assert.match(keyInputProblem("rf_live_"), /too short/);
});

test("a successful test lists user, organisations, scopes and balance", () => {
  const view = describeTest({
    ok: true, mode: "emulator", user: "dev@example.com",
    orgs: [{ name: "Acme", role: "owner", scopes: ["runs:create", "runs:read"] }],
    balance: "1000000.00", currency: "USD", balance_error: null, error: null,
  });
  assert.equal(view.ok, true);
  assert.equal(view.severity, "success");
  assert.equal(view.summary, "Connected to offline emulator");
  assert.deepEqual(view.lines, ["Signed in as dev@example.com", "Acme (owner): runs:create, runs:read", "Balance: $1,000,000.00"]);
});

test("a balance that cannot be read does not fail the test", () => {
  const view = describeTest({ ok: true, mode: "runflow", user: null, orgs: [], balance: null, balance_error: "no scope" });
  assert.equal(view.ok, true);
  assert.deepEqual(view.lines, ["Balance not available: no scope"]);
});

test("a failed test names the reason and keeps the engine's message", () => {
  const view = describeTest({ ok: false, mode: "runflow", error: { reason: "unauthorized", message: "The key was refused." } });
  assert.equal(view.ok, false);
  assert.equal(view.severity, "error");
  assert.equal(view.summary, "Key refused (Runflow)");
  assert.deepEqual(view.lines, ["The key was refused."]);
  assert.equal(describeTest({ ok: false, mode: "runflow", error: { reason: "network_error", message: "x" } }).summary,
    "Cannot reach Runflow (Runflow)");
  assert.equal(describeTest(null).summary.startsWith("Connection failed"), true);
});

test("organisation lines tolerate missing fields", () => {
  assert.deepEqual(orgLines([{ name: "Solo" }, {}]), ["Solo", "organisation"]);
  assert.deepEqual(orgLines(undefined), []);
  assert.equal(modeName("runflow"), "Runflow");
});

test("key errors from our nodes point to the setting", () => {
  const missing = { node_type: "RunflowProductIsolation", exception_type: "runflow_api.errors.MissingApiKey",
    exception_message: "No Runflow API key is set. Set the environment variable RUNFLOW_API_KEY, ..." };
  assert.equal(isKeyError(missing), true);
  assert.equal(isKeyError({ node_type: "RunflowProductIsolationFromURL", exception_type: "AuthenticationFailed",
    exception_message: "Runflow refused the key rf_live_…abcd (401)." }), true);
  assert.equal(isKeyError({ node_type: "RunflowStageImage", exception_message: "The Runflow API key rf_live_… is malformed" }), true);
  assert.match(KEY_ERROR_TOAST.detail, /Settings > Runflow/);
});

test("other errors, or errors from other nodes, do not", () => {
  assert.equal(isKeyError({ node_type: "KSampler", exception_message: "No Runflow API key is set" }), false);
  assert.equal(isKeyError({ node_type: "RunflowProductIsolation", exception_type: "RunFailed",
    exception_message: "The run failed: the model could not find a product." }), false);
  assert.equal(isKeyError(null), false);
});

test("node ids", () => {
  assert.equal(isIsolationNode("RunflowProductIsolation"), true);
  assert.equal(isIsolationNode("RunflowStageImage"), false);
  assert.equal(isRunflowNode("RunflowStageImage"), true);
  assert.equal(isRunflowNode("LoadImage"), false);
});
