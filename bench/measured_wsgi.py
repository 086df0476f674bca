"""The WSGI app benchmarks serve: the configured Django site, with two figures per response.

    gunicorn -c project/gunicorn.conf.py bench.measured_wsgi:application

Whatever DJANGO_SETTINGS_MODULE names (our site, or bench/stock_site) is served
unchanged; each response gains two headers the benchmark reads:

- `X-Bench-Statements`: SQL statements the request ran, counted with Django's
  documented `connection.execute_wrapper()` on every database connection. That is
  everything sent through a Django cursor (queries, BEGIN, savepoints); COMMIT and
  the connection's `init_command` are not counted, on either site.
- `X-Bench-Ms`: time from the request reaching Django to its response being
  ready (middleware, view, session save), without gunicorn's own work.

Both are taken when Django calls start_response, after every middleware has run.
"""

import time
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from typing import Any

from django.core.wsgi import get_wsgi_application
from django.db import connections

site = get_wsgi_application()


def application(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
    statements = 0

    def count(execute: Callable, sql: str, params: Any, many: bool, context: dict) -> Any:
        nonlocal statements
        statements += 1
        return execute(sql, params, many, context)

    started = time.perf_counter()

    def measured_start_response(status: str, headers: list, exc_info: Any = None) -> Callable:
        elapsed_ms = (time.perf_counter() - started) * 1000
        headers = [
            *headers,
            ("X-Bench-Statements", str(statements)),
            ("X-Bench-Ms", f"{elapsed_ms:.3f}"),
        ]
        return start_response(status, headers, exc_info)

    with ExitStack() as wrappers:
        for connection in connections.all():
            wrappers.enter_context(connection.execute_wrapper(count))
        return site(environ, measured_start_response)
