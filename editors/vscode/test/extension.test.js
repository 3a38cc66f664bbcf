// The extension's JavaScript without VS Code (which cannot be downloaded here): `vscode` is a
// recording stand-in, so activation, the server's command line, the restart command and the
// Even Better TOML association are checked as plain Node code.
//
//   node --test test/            (EXTENSION_DIR=<unpacked .vsix>/extension to test a package)
"use strict";

const assert = require("node:assert/strict");
const Module = require("node:module");
const path = require("node:path");
const test = require("node:test");

const root = process.env.EXTENSION_DIR || path.join(__dirname, "..");

/** A stand-in for the `vscode` module: settings from `settings`, every other member a harmless
 *  constructible function, so that vscode-languageclient's classes can extend them at load. */
function fakeVscode(settings, installed) {
  const calls = { commands: {}, updates: [], errors: [] };
  const anything = () =>
    new Proxy(function () {}, {
      get: (target, key) => (key === "prototype" ? target.prototype : key === Symbol.toPrimitive ? () => "" : anything()),
      apply: () => anything(),
      construct: () => anything(),
    });
  const configuration = (section) => ({
    get: (key, fallback) => {
      const value = settings[`${section}.${key}`];
      return value === undefined ? fallback : value;
    },
    inspect: (key) => ({ globalValue: settings[`${section}.${key}`] }),
    update: async (key, value, target) => {
      settings[`${section}.${key}`] = value;
      calls.updates.push({ key: `${section}.${key}`, value, target });
    },
  });
  const vscode = new Proxy(
    {
      ConfigurationTarget: { Global: 1, Workspace: 2 },
      workspace: new Proxy(
        { getConfiguration: configuration, createFileSystemWatcher: () => ({ dispose() {} }), onDidChangeConfiguration: () => ({ dispose() {} }) },
        { get: (t, k) => (k in t ? t[k] : anything()) }
      ),
      commands: {
        registerCommand: (name, fn) => {
          calls.commands[name] = fn;
          return { dispose() {} };
        },
        executeCommand: (name, ...args) => calls.commands[name](...args),
      },
      extensions: { getExtension: (id) => (installed.includes(id) ? { id } : undefined) },
      window: new Proxy({ showErrorMessage: (m) => calls.errors.push(m) }, { get: (t, k) => (k in t ? t[k] : anything()) }),
    },
    { get: (t, k) => (k in t ? t[k] : anything()) }
  );
  return { vscode, calls };
}

/** Loads the extension's main module with `vscode` (and optionally the language client) replaced. */
function load(settings, { installed = [], client } = {}) {
  const fake = fakeVscode(settings, installed);
  const original = Module._load;
  Module._load = function (request, parent, isMain) {
    if (request === "vscode") return fake.vscode;
    if (client && request === "vscode-languageclient/node") return client;
    return original.call(this, request, parent, isMain);
  };
  try {
    for (const key of Object.keys(require.cache)) delete require.cache[key];
    const main = require(path.join(root, require(path.join(root, "package.json")).main));
    return { main, calls: fake.calls };
  } finally {
    Module._load = original;
  }
}

/** A LanguageClient that records how it was made, started and stopped. */
function recordingClient() {
  const made = [];
  class LanguageClient {
    constructor(id, name, server, options) {
      Object.assign(this, { id, name, server, options, state: "new" });
      made.push(this);
    }
    async start() {
      this.state = "running";
    }
    async stop() {
      this.state = "stopped";
    }
    dispose() {}
  }
  return { module: { LanguageClient, TransportKind: { stdio: 0 } }, made };
}

function context() {
  const packageJSON = require(path.join(root, "package.json"));
  return { subscriptions: [], extensionPath: "/opt/ext", extension: { packageJSON } };
}

test("the real vscode-languageclient loads with the extension (its node_modules are complete)", () => {
  const { main } = load({});
  for (const name of ["activate", "deactivate", "serverCommand", "tomlAssociations"]) {
    assert.equal(typeof main[name], "function", name);
  }
});

test("activation starts `rattan lsp` for .rtn documents, from rattan.server.path", async () => {
  const client = recordingClient();
  const settings = { "rattan.server.path": "/home/me/venv/bin/rattan", "rattan.server.extraArgs": ["--stdio"] };
  const { main } = load(settings, { client: client.module });
  await main.activate(context());
  assert.equal(client.made.length, 1);
  const [c] = client.made;
  assert.equal(c.state, "running");
  assert.equal(c.server.run.command, "/home/me/venv/bin/rattan");
  assert.deepEqual(c.server.run.args, ["lsp", "--stdio"]);
  assert.deepEqual(c.options.documentSelector.slice(0, 2).map((s) => s.language), ["rattan", "rattan"]);
});

test("the server also gets the TOML/YAML documents the schema is given to, by name only", async () => {
  const client = recordingClient();
  const { main } = load({}, { client: client.module });
  const ctx = context();
  await main.activate(ctx);
  const named = client.made[0].options.documentSelector.slice(2);
  const contributes = ctx.extension.packageJSON.contributes;
  const globs = [...contributes.yamlValidation, ...contributes.tomlValidation].flatMap((r) => r.fileMatch);
  assert.ok(globs.includes("rattan.toml") && globs.includes("*.rattan.yaml"));
  assert.deepEqual(named, globs.map((g) => ({ scheme: "file", pattern: `**/${g}` })));
  // and the extension starts when such a file is opened or is in the workspace
  const events = ctx.extension.packageJSON.activationEvents;
  assert.ok(events.includes("onLanguage:toml") && events.includes("onLanguage:yaml"));
  for (const g of globs) {
    assert.ok(events.some((e) => e.startsWith("workspaceContains:") && e.includes(g)), g);
  }
});

test("without a setting the command is `rattan` on PATH", async () => {
  const client = recordingClient();
  const { main } = load({}, { client: client.module });
  await main.activate(context());
  assert.equal(client.made[0].server.run.command, "rattan");
  assert.deepEqual(client.made[0].server.run.args, ["lsp"]);
});

test("the restart command stops the server and starts it with the new path", async () => {
  const client = recordingClient();
  const settings = {};
  const { main, calls } = load(settings, { client: client.module });
  await main.activate(context());
  settings["rattan.server.path"] = "/usr/local/bin/rattan";
  await calls.commands["rattan.restartServer"]();
  assert.equal(client.made.length, 2);
  assert.equal(client.made[0].state, "stopped");
  assert.equal(client.made[1].server.run.command, "/usr/local/bin/rattan");
  assert.equal(client.made[1].state, "running");
});

test("TOML globs become path regexes that match the file name in any folder and nothing else", () => {
  const { main } = load({});
  const re = (glob) => new RegExp(main.globToRegex(glob));
  assert.ok(re("*.rattan.toml").test("/home/me/paths/broadband.rattan.toml"));
  assert.ok(!re("*.rattan.toml").test("/home/me/paths/broadband.toml"));
  assert.ok(!re("*.rattan.toml").test("/home/x.rattan.toml/other.toml"));
  assert.ok(re("rattan.toml").test("/srv/exp/rattan.toml"));
  assert.ok(!re("rattan.toml").test("/srv/exp/myrattan.toml"));
  assert.ok(!re("rattan.toml").test("/srv/exp/rattanXtoml"));
});

test("Even Better TOML gets the bundled schema for the tomlValidation globs, other entries kept", async () => {
  const client = recordingClient();
  const other = { "(^|/)pyproject\\.toml$": "https://example.org/pyproject.json" };
  const settings = { "evenBetterToml.schema.associations": { ...other } };
  const { main, calls } = load(settings, { client: client.module, installed: ["tamasfe.even-better-toml"] });
  await main.activate(context());
  assert.equal(calls.updates.length, 1);
  assert.equal(calls.updates[0].target, 1);
  const written = settings["evenBetterToml.schema.associations"];
  const schema = "file:///opt/ext/schemas/document.schema.json";
  assert.deepEqual(written, { ...other, "(^|/)[^/]*\\.rattan\\.toml$": schema, "(^|/)rattan\\.toml$": schema });
  // activating again writes nothing
  await main.activate(context());
  assert.equal(calls.updates.length, 1);
});

test("no association without Even Better TOML, or when rattan.schema.associateToml is off", async () => {
  for (const [settings, installed] of [[{}, []], [{ "rattan.schema.associateToml": false }, ["tamasfe.even-better-toml"]]]) {
    const client = recordingClient();
    const { main, calls } = load(settings, { client: client.module, installed });
    await main.activate(context());
    assert.equal(calls.updates.length, 0);
  }
});
