// The Rattan extension: starts `rattan lsp` for .rtn files and Rattan's TOML/YAML documents, and gives Even Better TOML the
// document schema shipped inside the extension (its `tomlValidation` takes absolute URLs only).
"use strict";

const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");
const { documentSelector, globToRegex, tomlAssociations } = require("./associations");

let client;

/** The command line that starts the server, from the settings. */
function serverCommand(config) {
  const command = config.get("server.path") || "rattan";
  const extra = config.get("server.extraArgs") || [];
  return { command, args: ["lsp", ...extra] };
}

/** Adds (or updates, after the extension moved) this extension's entries in Even Better TOML's
 *  user setting; leaves every other entry alone. Returns whether it wrote the setting. */
async function associateToml(context) {
  const ours = vscode.workspace.getConfiguration("rattan");
  if (!ours.get("schema.associateToml", true) || !vscode.extensions.getExtension("tamasfe.even-better-toml")) {
    return false;
  }
  const toml = vscode.workspace.getConfiguration("evenBetterToml");
  const current = { ...(toml.inspect("schema.associations")?.globalValue || {}) };
  const wanted = tomlAssociations(context.extensionPath, context.extension.packageJSON);
  const changed = Object.entries(wanted).filter(([regex, url]) => current[regex] !== url);
  if (changed.length === 0) {
    return false;
  }
  for (const [regex, url] of changed) {
    current[regex] = url;
  }
  await toml.update("schema.associations", current, vscode.ConfigurationTarget.Global);
  return true;
}

function startClient(context) {
  const config = vscode.workspace.getConfiguration("rattan");
  const { command, args } = serverCommand(config);
  const run = { command, args, transport: TransportKind.stdio };
  client = new LanguageClient(
    "rattan",
    "Rattan",
    { run, debug: run },
    {
      documentSelector: documentSelector(context.extension.packageJSON),
      synchronize: { fileEvents: vscode.workspace.createFileSystemWatcher("**/*.rtn") },
    }
  );
  context.subscriptions.push(client);
  return client.start().catch((error) => {
    vscode.window.showErrorMessage(
      `Rattan: cannot start \`${command} ${args.join(" ")}\` (${error.message || error}). ` +
        "Set rattan.server.path to the rattan command of the environment Rattan is installed in."
    );
  });
}

async function activate(context) {
  context.subscriptions.push(
    vscode.commands.registerCommand("rattan.restartServer", async () => {
      if (client) {
        await client.stop();
      }
      await startClient(context);
    }),
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (event.affectsConfiguration("rattan.server")) {
        await vscode.commands.executeCommand("rattan.restartServer");
      }
    })
  );
  await associateToml(context);
  await startClient(context);
}

async function deactivate() {
  if (client) {
    await client.stop();
  }
}

module.exports = { activate, deactivate, serverCommand, documentSelector, globToRegex, tomlAssociations, associateToml };
