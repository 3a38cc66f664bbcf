// Taplo's language server over stdio: @taplo/lsp, the WebAssembly build Even Better TOML runs in
// its Node process (the npm @taplo/cli is built without `taplo lsp`). Even Better TOML talks to it
// over Node IPC; this frames the same messages with Content-Length headers on stdin/stdout.
//
//   node tests/editors/taplo_stdio.js     (@taplo/lsp from tests/editors/node_modules)
"use strict";
const fs = require("fs");
const path = require("path");
const { TaploLsp } = require("@taplo/lsp");

let taplo;
let pending = Buffer.alloc(0);
let queue = Promise.resolve();

function write(message) {
  const body = Buffer.from(JSON.stringify(message), "utf8");
  process.stdout.write(`Content-Length: ${body.length}\r\n\r\n`);
  process.stdout.write(body);
}

async function start() {
  return TaploLsp.initialize({
    cwd: () => process.cwd(),
    envVar: (name) => process.env[name],
    envVars: () => Object.entries(process.env),
    findConfigFile: (from) => {
      for (const name of [".taplo.toml", "taplo.toml"]) {
        const full = path.join(from, name);
        if (fs.existsSync(full)) return full;
      }
      return undefined;
    },
    glob: () => [],
    isAbsolute: (p) => path.isAbsolute(p),
    isWindows: () => false,
    now: () => new Date(),
    readFile: (p) => fs.promises.readFile(p),
    writeFile: (p, c) => fs.promises.writeFile(p, c),
    stderr: process.stderr,
    stdErrAtty: () => false,
    stdin: process.stdin,
    stdout: process.stdout,
    urlToFilePath: (url) => decodeURIComponent(url).slice("file://".length),
    fetch: { fetch, Headers, Request, Response },
  }, { onMessage: write });
}

function handle(message) {
  if (message.method === "exit") process.exit(0);
  queue = queue.then(async () => {
    if (taplo === undefined) taplo = await start();
    taplo.send(message);
  });
}

process.stdin.on("data", (chunk) => {
  pending = Buffer.concat([pending, chunk]);
  for (;;) {
    const end = pending.indexOf("\r\n\r\n");
    if (end < 0) return;
    const m = /content-length:\s*(\d+)/i.exec(pending.subarray(0, end).toString("ascii"));
    const length = Number(m[1]);
    if (pending.length < end + 4 + length) return;
    handle(JSON.parse(pending.subarray(end + 4, end + 4 + length).toString("utf8")));
    pending = pending.subarray(end + 4 + length);
  }
});
process.stdin.on("end", () => process.exit(0));
process.on("unhandledRejection", (e) => { throw e; });
