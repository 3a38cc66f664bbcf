"""The YAML and TOML language servers editors run, driven over stdio as an editor drives them:
yaml-language-server (what the YAML extension runs) and Taplo (@taplo/lsp, what Even Better TOML
runs), both from `npm ci --prefix tests/editors`. Requests the servers send (their settings,
capability registration) are answered as an editor answers them."""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from rattan.tools.lsp.client import LspClient

HERE = Path(__file__).resolve().parent
NODE_MODULES = HERE / "node_modules"
INSTALL = "npm ci --prefix tests/editors"


def node_or_skip() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (.ci/run installs it with the npm tools)")
    return node


def yaml_server_command() -> list[str]:
    script = NODE_MODULES / "yaml-language-server" / "bin" / "yaml-language-server"
    if not script.is_file():
        pytest.skip(f"yaml-language-server is not installed: {INSTALL}")
    return [node_or_skip(), str(script), "--stdio"]


def taplo_server_command() -> list[str]:
    if not (NODE_MODULES / "@taplo" / "lsp").is_dir():
        pytest.skip(f"@taplo/lsp is not installed: {INSTALL}")
    return [node_or_skip(), str(HERE / "taplo_stdio.js")]


class StdioServer(LspClient):
    """One language server process, driven by rattan's own LSP client (its framing, requests and
    waits); `settings` answers its workspace/configuration requests."""

    def __init__(self, command: list[str], settings: dict[str, Any], init_options: Any = None) -> None:
        self.settings = settings
        super().__init__(cwd=str(HERE), command=command)
        self.request("initialize", {
            "processId": None, "rootUri": None, "initializationOptions": init_options,
            "capabilities": {
                "workspace": {"configuration": True, "didChangeConfiguration": {"dynamicRegistration": True}},
                "textDocument": {"completion": {"completionItem": {"snippetSupport": True}},
                                 "hover": {"contentFormat": ["markdown", "plaintext"]},
                                 "publishDiagnostics": {"relatedInformation": True}}},
        }, timeout=60)
        self.notify("initialized", {})
        self.notify("workspace/didChangeConfiguration", {"settings": settings})

    def server_request(self, msg: dict) -> None:
        """Answered as an editor answers: its settings, and null to anything else (registrations)."""
        result = None
        if msg["method"] == "workspace/configuration":
            result = [self.settings.get(item.get("section")) for item in msg["params"]["items"]]
        self.send({"id": msg["id"], "result": result})

    def request(self, method: str, params: Any, timeout: float = 30) -> Any:
        """The result of a request (an error response fails the test)."""
        reply = super().request(method, params, timeout)
        assert "error" not in reply, reply
        return reply.get("result")

    def open(self, uri: str, text: str, language: str) -> None:
        self.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": language,
                                                               "version": 1, "text": text}})

    def diagnostics(self, uri: str, some: bool, timeout: float = 30, quiet: float = 3.0) -> list[dict]:
        """The diagnostics published for `uri`. A server may publish more than once (Taplo: the syntax
        check's, then the schema's): with `some`, the first non-empty list (or the last one at
        `timeout`); without, the last list once none came for `quiet` seconds."""
        found = self._diagnostics_once(uri, timeout)
        deadline = time.monotonic() + timeout
        while not (some and found):
            try:
                wait = max(0.01, deadline - time.monotonic()) if some else quiet
                found = self._diagnostics_once(uri, wait)
            except TimeoutError:
                break
        return found

    def _diagnostics_once(self, uri: str, timeout: float) -> list[dict]:
        return self.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics"
                         and m["params"]["uri"] == uri, timeout)["params"]["diagnostics"]

    def completion_labels(self, uri: str, line: int, character: int) -> list[str]:
        result = self.request("textDocument/completion", {"textDocument": {"uri": uri},
                                                          "position": {"line": line, "character": character}})
        items = result["items"] if isinstance(result, dict) else result or []
        return [item["label"] for item in items]

    def close(self) -> None:
        try:
            self.request("shutdown", None, timeout=10)
            self.notify("exit", None)
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()
            self.proc.wait(timeout=10)
