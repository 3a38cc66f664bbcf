// Copies the document schema the Python package ships into the extension before packaging, so
// the .vsix carries the same file `rattan schema` prints (the repository keeps one copy).
const fs = require("fs");
const path = require("path");

const source = path.join(__dirname, "..", "..", "..", "schemas", "document.schema.json");
const target = path.join(__dirname, "..", "schemas", "document.schema.json");
fs.mkdirSync(path.dirname(target), { recursive: true });
fs.copyFileSync(source, target);
