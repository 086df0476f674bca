"""Plumbing the benchmarks share: a scratch database, the site's settings, gunicorn.

Each script in bench/ measures something different, but several need the same
stage set first, and a benchmark whose stage differs from its neighbour's by
accident measures the difference. So it is built here, once:

- `ScratchDatabase`: a database of its own for one run, never the one in
  DATABASE_URL (a benchmark seeds and wrecks data freely), dropped afterwards
  even when the run fails.
- `site_environment` and `prepare_site`: the site as production runs it (DEBUG=0,
  hashed static files, real secrets) but on plain-HTTP loopback, so figures are
  not flattered by DEBUG's shortcuts nor broken by HTTPS-only cookies.
- `start_gunicorn`: gunicorn on a free loopback port, stopped on the way out so
  no server outlives its benchmark.

What each script measures, and how it prints it, stays in that script.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_SCHEMES = ("postgres://", "postgresql://")


def _close_django_connections() -> None:
    """Close the connections Django holds in this process, if it opened any.

    Django keeps a connection open for the life of the process, and PostgreSQL
    will not drop a database that has one; on SQLite it would hold the file.
    """
    if "django.db" not in sys.modules:
        return
    from django.conf import settings

    if not settings.configured:
        return
    from django.db import connections

    connections.close_all()


class ScratchDatabase:
    """A database for one benchmark run, as a context manager; `.url` is its DATABASE_URL.

    When DATABASE_URL points at PostgreSQL, a database named after it plus
    `suffix` is created beside it on the same server (so the run measures the
    server it would run on) and dropped on exit, connections and all. Otherwise a
    SQLite file in a temporary directory, removed on exit. Any database left by
    an earlier run that was killed is dropped first.
    """

    def __init__(self, suffix: str) -> None:
        base = os.environ.get("DATABASE_URL", "")
        self.postgres = base.startswith(POSTGRES_SCHEMES)
        self.engine = "PostgreSQL" if self.postgres else "SQLite"
        self._directory: tempfile.TemporaryDirectory[str] | None = None
        if self.postgres:
            parts = urlsplit(base)
            self.name = f"{parts.path.lstrip('/') or 'postgres'}_{suffix}"
            # CREATE and DROP DATABASE run from the maintenance database: one
            # cannot drop the database one is connected to.
            self._admin_url = urlunsplit(parts._replace(path="/postgres"))
            self.url = urlunsplit(parts._replace(path=f"/{self.name}"))
        else:
            self._directory = tempfile.TemporaryDirectory(prefix=f"bench-{suffix}-")
            self.name = ""
            self._admin_url = ""
            self.url = f"sqlite:///{self._directory.name}/bench.sqlite3"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self._admin_url, autocommit=True) as connection:
            connection.execute(sql)

    def __enter__(self) -> ScratchDatabase:
        if self.postgres:
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self._admin(f'CREATE DATABASE "{self.name}"')
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        _close_django_connections()
        if self.postgres:
            # FORCE: a server process of ours that did not stop in time must not
            # leave the database behind.
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        if self._directory is not None:
            self._directory.cleanup()


def site_environment(
    database_url: str, workdir: Path, sandbox_url: str | None = None, **extra: str
) -> dict[str, str]:
    """The process environment for the site in production mode on plain-HTTP loopback.

    DEBUG=0 with fresh secrets, because DEBUG keeps every query in memory and
    serves static files unhashed, which is not what people get. The HTTPS-only
    protections (SSL redirect, HSTS, secure cookies) are off, because the
    benchmark's clients speak plain HTTP to 127.0.0.1 and would otherwise be
    redirected or lose their cookies. A benchmark never talks to the real X, and
    production settings refuse to start without X credentials unless told to use
    the sandbox, so X_SANDBOX=1 is always said. With `sandbox_url`, every call to X
    goes to the X sandbox there. `extra` adds or overrides variables.
    """
    from cryptography.fernet import Fernet

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": database_url,
        "STATIC_ROOT": str(workdir / "static"),
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "SECURE_HSTS_SECONDS": "0",
        "X_SANDBOX": "1",
    }
    if sandbox_url is not None:
        env.update(X_API_BASE_URL=sandbox_url, X_WEB_BASE_URL=sandbox_url)
    env.update(extra)
    return env


def manage(env: dict[str, str], *command: str) -> None:
    """`manage.py COMMAND` in a child process with `env`, its chatter silenced."""
    subprocess.run(
        [sys.executable, "manage.py", *command],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def prepare_site(env: dict[str, str]) -> None:
    """collectstatic, then migrate, for the site configured by `env`.

    collectstatic first: with DEBUG=0 the URLconf (loaded by migrate's checks)
    may look files up in the static manifest, which must exist by then.
    """
    manage(env, "collectstatic", "--noinput")
    manage(env, "migrate", "--noinput")


def cpu_reference_ms(repeat: int = 7) -> float:
    """Median time of a fixed pure-Python workload: how fast this machine runs right now.

    A shared host can run the same code twice as slowly for seconds at a time;
    printed beside a figure, this says on what kind of machine it was taken.
    """
    data = [
        {"id": index, "name": str(index) * 5, "pair": [index, index + 1]} for index in range(2000)
    ]
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        json.loads(json.dumps(data))
        sorted(str(number) for number in range(20000))
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serves(site: str, path: str) -> bool:
    parts = urlsplit(site)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        connection.request("GET", path)
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


@contextmanager
def start_gunicorn(
    env: dict[str, str],
    arguments: Sequence[str],
    log_path: Path,
    *,
    ready_path: str = "/healthz",
    timeout: float = 60.0,
) -> Iterator[str]:
    """Run gunicorn with `arguments` on a free loopback port; yields the site's base URL.

    Returns once `ready_path` answers 200, so no measurement includes start-up.
    The bind address is given on the command line, which overrides a config
    file's. Everything gunicorn and the site print goes to `log_path` (the
    benchmarks search it afterwards). On exit gunicorn is stopped and waited for,
    killed if it will not stop, so none is left running.
    """
    port = free_port()
    site = f"http://127.0.0.1:{port}"
    command = [str(Path(sys.executable).parent / "gunicorn"), *arguments]
    command += ["--bind", f"127.0.0.1:{port}"]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + timeout
            while not _serves(site, ready_path):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"gunicorn did not start; see {log_path}")
                time.sleep(0.1)
            yield site
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
