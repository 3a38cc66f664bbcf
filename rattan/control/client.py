"""A Python client of the control API (what `rattan ctl` uses), over TCP or a Unix socket."""
from __future__ import annotations

import http.client
import json
import socket
from typing import Any
from urllib.parse import quote, urlencode

from .server import parse_address


class ControlError(RuntimeError):
    """The API refused a request (4xx/5xx); `status` and `body` say why."""

    def __init__(self, status: int, body: Any) -> None:
        self.status, self.body = status, body
        msg = body.get("error", "") if isinstance(body, dict) else str(body)
        fields = "; ".join(f"{e['field']}: {e['message']}" for e in (body.get("errors") or [])) \
            if isinstance(body, dict) else ""
        super().__init__(f"{status}: {msg}" + (f" ({fields})" if fields else ""))


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


class Client:
    """`Client("127.0.0.1:8086")` or `Client("unix:/tmp/rattan.sock")`."""

    def __init__(self, address: str, timeout: float = 10.0) -> None:
        self.kind, self.where = parse_address(address.removeprefix("http://"))
        self.timeout = timeout

    def _connection(self) -> http.client.HTTPConnection:
        if self.kind == "unix":
            return _UnixConnection(self.where, self.timeout)
        host, port = self.where
        return http.client.HTTPConnection(host, port, timeout=self.timeout)

    def request(self, method: str, path: str, body: Any = None) -> Any:
        conn = self._connection()
        try:
            data = None if body is None else json.dumps(body).encode()
            headers = {"Content-Type": "application/json"} if data is not None else {}
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            doc = json.loads(resp.read() or b"null")
        finally:
            conn.close()
        if resp.status >= 400:
            raise ControlError(resp.status, doc)
        return doc

    @staticmethod
    def _cell_path(channel: str, cell: str, instance: int, suffix: str = "") -> str:
        q = f"?{urlencode({'instance': instance})}" if instance else ""
        return f"/channels/{quote(channel, safe='')}/cells/{quote(cell, safe='')}{suffix}{q}"

    def state(self) -> dict:
        return self.request("GET", "/state")

    def cells(self) -> list[dict]:
        return self.request("GET", "/cells")

    def openapi(self) -> dict:
        return self.request("GET", "/openapi.json")

    def get(self, channel: str, cell: str, instance: int = 0) -> dict:
        return self.request("GET", self._cell_path(channel, cell, instance))

    def telemetry(self, channel: str, cell: str, instance: int = 0) -> dict:
        return self.request("GET", self._cell_path(channel, cell, instance, "/telemetry"))

    def set(self, channel: str, cell: str, instance: int = 0, at: int | str | None = None, **values) -> dict:
        """Change runtime parameters: `set("c", "up.bw", rate="5Mbps", at="12s")`."""
        body = dict(values)
        if at is not None:
            body["at"] = at
        return self.request("PATCH", self._cell_path(channel, cell, instance), body)

    def upstream_config(self, cell_id: str, body: dict, instance: int = 0) -> dict:
        """Upstream Rattan's `POST /config/<id>` with one of its cell config bodies, e.g.
        `upstream_config("up_1", {"bandwidth": "5Mbps"})` (docs/control.md, "Upstream Rattan's routes")."""
        q = f"?{urlencode({'instance': instance})}" if instance else ""
        return self.request("POST", f"/config/{quote(cell_id, safe='')}{q}", body)
