"""A small threaded HTTP/1.1 host for the sandbox's WSGI app.

The stock `wsgiref` server speaks HTTP/1.0 without keep-alive and writes the
status line, headers and body in separate small writes; with Nagle's algorithm
and delayed ACKs on loopback that costs ~40 ms per response, which would make
every benchmark measure the sandbox instead of the site. This host runs one
thread per connection, keeps connections alive, sets TCP_NODELAY and sends each
response with a single write.
"""

from __future__ import annotations

import io
import socket
import sys
import traceback
from collections.abc import Callable, Iterable
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class DropConnection(Exception):
    """Raised by the app to close the connection without sending any response."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "x-sandbox"
    # Idle keep-alive connections give their thread back after this many seconds.
    timeout = 120

    server: SandboxHTTPServer

    def _serve(self) -> None:
        body = self._read_body()
        if body is None:
            return
        try:
            status, headers, payload = self._call_app(body)
        except DropConnection:
            self.close_connection = True
            return
        self._write_response(status, headers, payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._write_response("411 Length Required", [], b"")
            return None
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _environ(self, body: bytes) -> dict[str, Any]:
        raw_path, _, query = self.path.partition("?")
        host, port = self.server.server_address[:2]
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(raw_path, "latin-1"),
            "RAW_URI": self.path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "SERVER_NAME": host,
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in self.headers.items():
            key = "HTTP_" + name.upper().replace("-", "_")
            if key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                environ[key] = value
        return environ

    def _call_app(self, body: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None):
            started[:] = [status, headers]

        try:
            chunks = self.server.app(self._environ(body), start_response)
            payload = b"".join(chunks)
        except DropConnection:
            raise
        except Exception:
            traceback.print_exc()
            return "500 Internal Server Error", [("Content-Type", "text/plain")], b"internal error"
        return started[0], started[1], payload

    def _write_response(self, status: str, headers: list[tuple[str, str]], payload: bytes) -> None:
        lines = [f"HTTP/1.1 {status}", f"Server: {self.server_version}"]
        lines.append(f"Date: {formatdate(usegmt=True)}")
        lines.extend(f"{name}: {value}" for name, value in headers)
        lines.append(f"Content-Length: {len(payload)}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head if self.command == "HEAD" else head + payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the call log under /_sandbox/calls is the sandbox's record."""


class SandboxHTTPServer(ThreadingHTTPServer):
    """Thread-per-connection server with a deep accept queue and Nagle disabled."""

    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: WSGIApp) -> None:
        self.app = app
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, addr


def make_server(host: str, port: int, app: WSGIApp) -> SandboxHTTPServer:
    """Bind the sandbox app to host:port (port 0 picks a free one)."""
    return SandboxHTTPServer((host, port), app)
