"""A small LSP client for `rattan lsp` over stdio: what the tests and `benchmarks/lsp_latency.py`
drive the server with, exactly as an editor would (Content-Length framed JSON-RPC). The editor
tests drive other language servers with it too (tests/editors/servers.py)."""
from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from typing import Any, BinaryIO, Callable


def read_message(stream: BinaryIO) -> dict | None:
    """The next Content-Length framed JSON-RPC message on `stream` (None at its end)."""
    headers = {}
    while True:
        line = stream.readline()
        if not line:
            return None
        line = line.decode("ascii").strip()
        if not line:
            break
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return json.loads(stream.read(int(headers["content-length"])))


def write_message(stream: BinaryIO, msg: dict) -> None:
    """`msg` as a JSON-RPC 2.0 message, framed with its Content-Length."""
    body = json.dumps({"jsonrpc": "2.0", **msg}).encode()
    stream.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    stream.flush()


class LspClient:
    """Starts `python -m rattan lsp --stdio` (or `command`); requests by id, other messages kept in
    order. A request from the server goes to `server_request` (by default kept like the rest)."""

    def __init__(self, cwd: str | None = None, env: dict[str, str] | None = None,
                 command: list[str] | None = None, inherit_env: bool = True) -> None:
        """`env` adds to this process's environment, or with `inherit_env=False` is the whole of it."""
        if env and inherit_env:
            env = {**os.environ, **env}
        self.proc = subprocess.Popen(command or [sys.executable, "-m", "rattan", "lsp", "--stdio"], cwd=cwd,
                                     env=env or None,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.messages: queue.Queue = queue.Queue()
        self.next_id = 0
        self.lock = threading.Lock()  # the reader thread may answer the server while we send
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while (msg := read_message(self.proc.stdout)) is not None:
            if "method" in msg and "id" in msg:
                self.server_request(msg)
            else:
                self.messages.put(msg)

    def server_request(self, msg: dict) -> None:
        """A request the server sent (in the reader thread): kept with the other messages."""
        self.messages.put(msg)

    def send(self, msg: dict) -> None:
        with self.lock:
            write_message(self.proc.stdin, msg)

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
