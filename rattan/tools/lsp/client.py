"""A small LSP client for `rattan lsp` over stdio: what the tests and `benchmarks/lsp_latency.py`
drive the server with, exactly as an editor would (Content-Length framed JSON-RPC)."""
from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from typing import Any, Callable


class LspClient:
    """Starts `python -m rattan lsp --stdio`; requests by id, other messages kept in order."""

    def __init__(self, cwd: str | None = None, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "rattan", "lsp", "--stdio"], cwd=cwd,
                                     env={**os.environ, **env} if env else None,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.messages: queue.Queue = queue.Queue()
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        out = self.proc.stdout
        while True:
            headers = {}
            while True:
                line = out.readline()
                if not line:
                    return
                line = line.decode("ascii").strip()
                if not line:
                    break
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
            self.messages.put(json.loads(out.read(int(headers["content-length"]))))

    def send(self, msg: dict) -> None:
        body = json.dumps({"jsonrpc": "2.0", **msg}).encode()
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def notify(self, method: str, params: Any) -> None:
        self.send({"method": method, "params": params})

    def request(self, method: str, params: Any, timeout: float = 20) -> dict:
        """The server's response (with `result` or `error`)."""
        self.next_id += 1
        rid = self.next_id
        self.send({"id": rid, "method": method, "params": params})
        return self.wait(lambda m: m.get("id") == rid and "method" not in m, timeout)

    def wait(self, pred: Callable[[dict], bool], timeout: float = 20) -> dict:
        """The next message that satisfies `pred` (others are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no such message from the language server in time")
            try:
                msg = self.messages.get(timeout=left)
            except queue.Empty:
                raise TimeoutError("no such message from the language server in time") from None
            if pred(msg):
                return msg

    def diagnostics(self, uri: str, timeout: float = 20) -> list[dict]:
        """The next diagnostics published for `uri`."""
        msg = self.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics"
                        and m["params"]["uri"] == uri, timeout)
        return msg["params"]["diagnostics"]

    def initialize(self) -> dict:
        reply = self.request("initialize", {"processId": None, "rootUri": None, "capabilities": {}})
        self.notify("initialized", {})
        return reply

    def close(self, timeout: float = 10) -> int:
        """shutdown, exit, and the server's exit status (killed if it does not go)."""
        try:
            if self.proc.poll() is None:
                self.request("shutdown", None, timeout)
                self.notify("exit", None)
            return self.proc.wait(timeout)
        except (TimeoutError, BrokenPipeError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(timeout)
            return self.proc.returncode
