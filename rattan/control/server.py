"""Serving the control API over HTTP, on loopback or a Unix socket only (`--http ADDR`).

ADDR is `PORT`, `HOST:PORT` with a loopback HOST (`127.0.0.1`, `localhost`, `[::1]`), or
`unix:PATH`. The API is a WSGI application (`wsgi_app`), served by a threaded stdlib server in a
thread of its own; the engine is called from those threads (its calls are thread-safe).
"""
from __future__ import annotations

import ipaddress
import os
import socket
import socketserver
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from .api import ControlAPI

MAX_BODY = 1 << 20
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 413: "Payload Too Large",
            422: "Unprocessable Content", 500: "Internal Server Error"}


class AddressError(ValueError):
    """`--http` names an address the API may not listen on."""


def parse_address(text: str) -> tuple[str, object]:
    """("unix", path) or ("tcp", (host, port)), refusing anything but loopback."""
    if text.startswith("unix:"):
        path = text[5:]
        if not path:
            raise AddressError("--http unix:PATH needs a path, e.g. unix:/tmp/rattan.sock")
        return "unix", path
    host, port = "127.0.0.1", text
    if ":" in text:
        host, _, port = text.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise AddressError(f"--http `{text}`: expected PORT, HOST:PORT or unix:PATH (e.g. 127.0.0.1:8086)")
    if host != "localhost":
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise AddressError(f"--http `{text}`: the control API listens on loopback or a Unix socket only "
                               f"(127.0.0.1, [::1], localhost, unix:PATH), not on `{host}`")
    return "tcp", (host, int(port))


def wsgi_app(api: ControlAPI):
    def app(environ, start_response):
        method = environ["REQUEST_METHOD"]
        url = environ.get("PATH_INFO", "/") + ("?" + environ["QUERY_STRING"] if environ.get("QUERY_STRING") else "")
        body = None
        if method in ("PATCH", "POST", "PUT"):
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > MAX_BODY:
                from .api import _error
                resp = _error(413, f"the body is over {MAX_BODY} bytes")
            else:
                body = environ["wsgi.input"].read(length) if length > 0 else b""
                resp = api.handle(method, url, body)
        else:
            resp = api.handle(method, url, body)
        data = resp.json()
        start_response(f"{resp.status} {_REASONS.get(resp.status, '')}",
                       [("Content-Type", "application/json"), ("Content-Length", str(len(data))),
                        *(resp.headers or {}).items()])
        return [data]
    return app


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args) -> None:  # the run's terminal is for the run
        pass

    def address_string(self) -> str:
        return self.client_address[0] if isinstance(self.client_address, tuple) else "unix"


class _TCPServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self) -> None:  # HTTPServer's would look the host name up (slow without DNS)
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]
        self.setup_environ()


class _TCP6Server(_TCPServer):
    address_family = socket.AF_INET6


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def server_bind(self) -> None:
        socketserver.UnixStreamServer.server_bind(self)
        self.server_name, self.server_port = "localhost", 0
        self.base_environ = {"SERVER_NAME": "localhost", "SERVER_PORT": "0", "GATEWAY_INTERFACE": "CGI/1.1",
                             "SCRIPT_NAME": "", "REMOTE_HOST": ""}

    def get_app(self):
        return self.application

    def set_app(self, application) -> None:
        self.application = application


class _UnixHandler(_Quiet):
    def setup(self) -> None:
        super().setup()
        self.client_address = ("unix", 0)


class ControlServer:
    """The API served in a background thread until `close()`."""

    def __init__(self, api: ControlAPI, address: str) -> None:
        kind, where = parse_address(address)
        self.kind = kind
        if kind == "unix":
            if os.path.exists(where):
                raise AddressError(f"--http unix:{where}: the path exists; remove it or choose another")
            self.server = _UnixServer(where, _UnixHandler)
            self.address = f"unix:{where}"
        else:
            host, port = where
            cls = _TCP6Server if ":" in host else _TCPServer
            try:
                self.server = cls((host, port), _Quiet)
            except OSError as e:
                raise AddressError(f"--http {address}: cannot listen there: {e.strerror}") from None
            bound = self.server.server_address
            self.address = f"{'[' + bound[0] + ']' if ':' in bound[0] else bound[0]}:{bound[1]}"
        self.path = where if kind == "unix" else None
        self.server.set_app(wsgi_app(api))
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                       name="rattan control API", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return self.address if self.kind == "unix" else f"http://{self.address}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self.path:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    def __enter__(self) -> "ControlServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
