// Which files get the document schema in Even Better TOML: its `tomlValidation` contribution
// passes the URL on as it is, and a relative one does not resolve, so the extension gives Taplo
// the bundled file through `evenBetterToml.schema.associations` (regex -> URL). No `vscode` here:
// the tests run this file with plain Node.
"use strict";

const path = require("path");
const { pathToFileURL } = require("url");

/** A regular expression over a document's path for one `fileMatch` glob (`*` stays in one folder). */
function globToRegex(glob) {
  const body = glob
    .split("*")
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
    .join("[^/]*");
  return `(^|/)${body}$`;
}

/** The association entries for the extension's `tomlValidation` globs, naming the schema file
 *  inside the extension installed at `extensionPath`. */
function tomlAssociations(extensionPath, packageJSON) {
  const schema = pathToFileURL(path.join(extensionPath, "schemas", "document.schema.json")).href;
  const entries = {};
  for (const rule of packageJSON.contributes.tomlValidation || []) {
    for (const glob of [].concat(rule.fileMatch || [])) {
      entries[globToRegex(glob)] = schema;
    }
  }
  return entries;
}

/** The documents `rattan lsp` is started for: `.rtn` files, and the upstream TOML/YAML documents
 *  the extension gives the schema to (the `yamlValidation` and `tomlValidation` names), selected by
 *  name whatever language another extension gave them. In those the server completes a cell's keys
 *  by its `type`, which Taplo cannot, and reports the compiler's findings with their quick fixes. */
function documentSelector(packageJSON) {
  const selector = [{ scheme: "file", language: "rattan" }, { scheme: "untitled", language: "rattan" }];
  const contributes = packageJSON.contributes;
  for (const rule of [...(contributes.yamlValidation || []), ...(contributes.tomlValidation || [])]) {
    for (const glob of [].concat(rule.fileMatch || [])) {
      selector.push({ scheme: "file", pattern: `**/${glob}` });
    }
  }
  return selector;
}

module.exports = { documentSelector, globToRegex, tomlAssociations };
