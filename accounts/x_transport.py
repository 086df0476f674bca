"""The transport under our requests sessions to X: one kept-alive connection per host.

requests hands each call to urllib3, whose pool manager, retry and timeout objects
and response wrapper are a good part of the 0.5 to 1 ms that a call through requests
costs here on top of the same call over plain http.client; a sign-in makes three
calls (measured with this transport: 40.4 -> 37.7 ms per sign-in). Our calls go to
one or two fixed hosts from a session that belongs to one thread, so a single
http.client connection per host does all the pooling needed.

Everything above the socket stays requests': preparing the request, OAuth signing,
hooks, redirects, exceptions (Timeout, ConnectionError, SSLError) and the Response
object. TLS is verified as requests does it, against certifi's bundle or the
`verify` path. Calls this transport does not handle the same way (through a
proxy, streamed, or with a client certificate) go to requests' own HTTPAdapter.

Like urllib3 with requests' default of no retries, a request is never sent twice: a
kept-alive connection the server has closed is noticed before use and replaced.
"""

import http.client
import os
import select
import socket
import ssl
import zlib
from functools import cache
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter, HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import DEFAULT_CA_BUNDLE_PATH, get_encoding_from_headers, select_proxy

Timeout = float | tuple[float | None, float | None] | None
_DECODABLE = ("gzip", "deflate", "identity")


@cache
def _tls_context(verify: bool | str) -> ssl.SSLContext:
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    bundle = DEFAULT_CA_BUNDLE_PATH if verify is True else verify
    if bundle and os.path.isdir(bundle):
        return ssl.create_default_context(capath=bundle)
    return ssl.create_default_context(cafile=bundle)


def _split_timeout(timeout: Timeout) -> tuple[float | None, float | None]:
    if isinstance(timeout, tuple):
        connect, read = timeout
        return connect, read
    return timeout, timeout


def _is_dropped(connection: http.client.HTTPConnection) -> bool:
    """Whether an idle kept-alive connection was closed by the other end.

    An idle connection has nothing to read; if it polls readable, what is there is
    the end of the stream (or junk), and the connection cannot carry a request.
    """
    if connection.sock is None:
        return True
    readable, _, _ = select.select([connection.sock], [], [], 0)
    return bool(readable)


def _decode(content: bytes, encoding: str) -> bytes:
    """Undo the Content-Encoding requests asked for (gzip, deflate), as urllib3 would."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return content
    try:
        if encoding == "gzip":
            return zlib.decompress(content, 16 + zlib.MAX_WBITS)
        if encoding == "deflate":
            try:
                return zlib.decompress(content)
            except zlib.error:
                return zlib.decompress(content, -zlib.MAX_WBITS)
    except zlib.error as exc:
        raise requests.exceptions.ContentDecodingError(exc) from exc
    raise requests.exceptions.ContentDecodingError(f"unsupported Content-Encoding {encoding!r}")


def _headers(request: requests.PreparedRequest) -> dict[str, str]:
    """The request's headers, offering only the content encodings `_decode` can undo."""
    headers = dict(request.headers)
    for name in headers:
        if name.lower() == "accept-encoding":
            value = headers[name]
            value = value.decode("latin-1") if isinstance(value, bytes) else value
            offered = (encoding.strip() for encoding in value.split(","))
            headers[name] = ", ".join(e for e in offered if e in _DECODABLE) or "identity"
    return headers


def _as_requests_error(
    exc: OSError | http.client.HTTPException, request: requests.PreparedRequest, connected: bool
) -> requests.RequestException:
    """The exception requests' own transport raises for the same failure."""
    if isinstance(exc, ssl.SSLError):
        return requests.exceptions.SSLError(exc, request=request)
    if isinstance(exc, TimeoutError):
        # Before the connection was up it is a connect timeout (a ConnectionError
        # too, as in requests); after, the answer was late.
        if not connected:
            return requests.exceptions.ConnectTimeout(exc, request=request)
        return requests.exceptions.ReadTimeout(exc, request=request)
    return requests.exceptions.ConnectionError(exc, request=request)


class KeepAliveTransport(BaseAdapter):
    """A requests transport adapter keeping one http.client connection per (scheme, host, port).

    Not thread-safe, on purpose: mount it on a session used by one thread only.
    """

    def __init__(self) -> None:
        super().__init__()
        self._connections: dict[tuple[str, str, int, bool | str], http.client.HTTPConnection] = {}
        self._fallback = HTTPAdapter()

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Timeout = None,
        verify: bool | str = True,
        cert: object = None,
        proxies: dict[str, str] | None = None,
    ) -> requests.Response:
        parts = urlsplit(request.url)
        if (
            stream
            or cert
            or select_proxy(request.url, proxies or {})
            or not isinstance(request.body, bytes | str | None)
            or not parts.hostname
        ):
            return self._fallback.send(
                request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies
            )
        connect_timeout, read_timeout = _split_timeout(timeout)
        key = (parts.scheme, parts.hostname, parts.port or 0, verify)
        connection = self._connections.get(key)
        if connection is not None and _is_dropped(connection):
            self._drop(key, connection)
            connection = None
        connected = connection is not None
        try:
            if connection is None:
                connection = self._connect(parts.scheme, parts.hostname, parts.port, verify)
                connection.timeout = connect_timeout
                connection.connect()
                # http.client writes a request's headers and body separately; with
                # Nagle's algorithm the body then waits for the server's delayed ACK
                # (about 40 ms). urllib3 sets the same option.
                connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._connections[key] = connection
                connected = True
            connection.sock.settimeout(read_timeout)
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            body = request.body.encode() if isinstance(request.body, str) else request.body
            connection.request(request.method, path, body=body, headers=_headers(request))
            answer = connection.getresponse()
            content = answer.read()
        except (OSError, http.client.HTTPException) as exc:
            self._drop(key, connection)
            raise _as_requests_error(exc, request, connected) from exc
        except BaseException:
            self._drop(key, connection)
            raise
        if answer.will_close:
            self._drop(key, connection)
        return self._response(request, answer, content)

    def _connect(
        self, scheme: str, host: str, port: int | None, verify: bool | str
    ) -> http.client.HTTPConnection:
        if scheme == "https":
            return http.client.HTTPSConnection(host, port, context=_tls_context(verify))
        if scheme == "http":
            return http.client.HTTPConnection(host, port)
        raise requests.exceptions.InvalidURL(f"no transport for {scheme!r} URLs")

    def _drop(self, key: tuple, connection: http.client.HTTPConnection | None) -> None:
        self._connections.pop(key, None)
        if connection is not None:
            connection.close()

    def _response(
        self, request: requests.PreparedRequest, answer: http.client.HTTPResponse, content: bytes
    ) -> requests.Response:
        headers: CaseInsensitiveDict = CaseInsensitiveDict()
        for name, value in answer.getheaders():
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        response = requests.Response()
        response.status_code = answer.status
        response.reason = answer.reason
        response.headers = headers
        response._content = _decode(content, headers.get("Content-Encoding", ""))
        response._content_consumed = True
        response.encoding = get_encoding_from_headers(headers)
        response.url = request.url
        response.request = request
        response.connection = self
        return response

    def close(self) -> None:
        for key, connection in list(self._connections.items()):
            self._drop(key, connection)
        self._fallback.close()
