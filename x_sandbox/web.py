"""Minimal request/response types so handlers stay plain functions over plain data."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

FORM_TYPE = "application/x-www-form-urlencoded"


@dataclass
class Request:
    method: str
    path: str
    raw_path: str
    query_string: str
    headers: dict[str, str]
    body: bytes

    @classmethod
    def from_environ(cls, environ: dict[str, Any]) -> Request:
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        raw_path = environ.get("RAW_URI", environ["PATH_INFO"]).partition("?")[0]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        return cls(
            method=environ["REQUEST_METHOD"],
            path=environ["PATH_INFO"],
            raw_path=raw_path,
            query_string=environ.get("QUERY_STRING", ""),
            headers=headers,
            body=environ["wsgi.input"].read(length) if length else b"",
        )

    @property
    def base_url(self) -> str:
        """The origin the client addressed, which is what OAuth 1.0a signatures cover."""
        return "http://" + self.headers.get("host", "127.0.0.1")

    @property
    def url(self) -> str:
        return self.base_url + self.raw_path

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(self.query_string, keep_blank_values=True))

    @property
    def is_form(self) -> bool:
        return self.headers.get("content-type", "").split(";")[0].strip().lower() == FORM_TYPE

    @property
    def form(self) -> dict[str, str]:
        if not self.is_form:
            return {}
        return dict(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))

    def json(self) -> Any:
        """The JSON body; raises ValueError when it is missing or malformed."""
        return json.loads(self.body or b"null")


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)
    # (limit, remaining, reset) for endpoints that are metered; others get defaults.
    rate: tuple[int, int, int] | None = None

    def status_line(self) -> str:
        return f"{self.status} {HTTPStatus(self.status).phrase}"


def json_response(
    status: int, data: Any, content_type: str = "application/json; charset=utf-8"
) -> Response:
    return Response(status, json.dumps(data).encode(), content_type)


def text_response(
    status: int, text: str, content_type: str = "text/plain; charset=utf-8"
) -> Response:
    return Response(status, text.encode(), content_type)


def redirect(location: str) -> Response:
    return Response(302, b"", "text/html; charset=utf-8", [("Location", location)])


class Rejected(Exception):
    """Stop handling a request and answer with this response instead."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response
