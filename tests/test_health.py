"""GET /healthz for load balancers, and `make serve`'s gunicorn + job workers."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from tests.test_foundation import PRODUCTION_ENV, ROOT, run_manage


def enqueue_row(**fields) -> DBTaskResult:
    defaults = {
        "args_kwargs": {"args": [], "kwargs": {}},
        "task_path": "admin_ext.tasks.example",
        "backend_name": "default",
        "run_after": timezone.now() - timedelta(seconds=1),
    }
    return DBTaskResult.objects.create(**{**defaults, **fields})


@pytest.mark.django_db
def test_healthz_reports_database_and_job_backlog_without_a_session(client):
    waiting = enqueue_row()
    DBTaskResult.objects.filter(pk=waiting.pk).update(
        enqueued_at=timezone.now() - timedelta(minutes=2)
    )
    enqueue_row()
    enqueue_row(status="SUCCESSFUL")
    enqueue_row(status="RUNNING")
    enqueue_row(run_after=timezone.now() + timedelta(hours=1))  # scheduled, not late

    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["db"] == "ok"
    assert body["queue"]["pending"] == 2
    assert 119 <= body["queue"]["oldest_seconds"] <= 180
    assert "Set-Cookie" not in response.headers
    assert "no-store" in response["Cache-Control"]


@pytest.mark.django_db
def test_healthz_with_an_empty_queue(client):
    response = client.get("/healthz")
    assert response.json() == {"db": "ok", "queue": {"pending": 0, "oldest_seconds": 0.0}}


@pytest.mark.django_db
def test_healthz_is_reachable_over_plain_http_when_https_is_enforced(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz").status_code == 200
    assert client.get("/admin/login/").status_code == 301


def test_healthz_answers_503_when_the_database_is_unreachable():
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    code = (
        "from django.test import Client;"
        "r = Client(HTTP_HOST='localhost').get('/healthz');"
        "print('HEALTHZ', r.status_code, r.content.decode())"
    )
    result = run_manage(
        "shell",
        "--no-imports",
        "-c",
        code,
        env={"DATABASE_URL": f"postgres://someone:db-pass-Zq9@127.0.0.1:{closed_port}/signin"},
    )
    answer = next(line for line in result.stdout.splitlines() if line.startswith("HEALTHZ "))
    status, body = answer.removeprefix("HEALTHZ ").split(" ", 1)
    assert status == "503"
    assert json.loads(body) == {"db": "unreachable"}
    assert "db-pass-Zq9" not in result.stdout + result.stderr and str(closed_port) not in body


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def children_of(pid: int) -> list[tuple[int, str]]:
    listing = subprocess.run(
        ["ps", "--ppid", str(pid), "-o", "pid=,args="], capture_output=True, text=True
    ).stdout
    return [(int(line.split(None, 1)[0]), line.split(None, 1)[1]) for line in listing.splitlines()]


def db_worker_pids(master: int) -> list[int]:
    return [pid for pid, args in children_of(master) if "db_worker" in args]


def wait_for(condition, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_make_serve_runs_gunicorn_static_files_and_supervised_job_workers(tmp_path: Path):
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    env.update(PRODUCTION_ENV)
    env.update(
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="0",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        STATIC_ROOT=str(tmp_path / "static"),
        PORT=str(port),
        WEB_CONCURRENCY="2",
        DB_WORKERS="2",
    )
    make = subprocess.Popen(
        ["make", "--no-print-directory", "serve", f"PYTHON={sys.executable}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        health = wait_for(lambda: _get(base + "/healthz"), timeout=90)
        assert health.status_code == 200
        assert health.json()["db"] == "ok"

        manifest = json.loads((tmp_path / "static" / "staticfiles.json").read_text())
        css = _get(base + "/static/" + manifest["paths"]["css/site.css"])
        assert css.status_code == 200
        assert "immutable" in css.headers["Cache-Control"]
        assert "max-age=315360000" in css.headers["Cache-Control"]
        assert css.headers.get("Content-Encoding") in {"gzip", "br"}

        master = wait_for(lambda: _gunicorn_master(make.pid))
        workers = wait_for(lambda: len(db_worker_pids(master)) == 2 and db_worker_pids(master))
        os.kill(workers[0], signal.SIGKILL)
        restarted = wait_for(
            lambda: (
                (pids := db_worker_pids(master))
                and len(pids) == 2
                and workers[0] not in pids
                and pids
            )
        )

        os.kill(master, signal.SIGTERM)
        make.wait(timeout=60)
        assert not [pid for pid in restarted if _alive(pid)]
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGTERM)
            make.wait(timeout=30)
        output = make.stdout.read() if make.stdout else ""
    assert '"logger": "gunicorn.access"' in output
    assert "GET /healthz" in output


def _get(url: str) -> requests.Response | None:
    try:
        return requests.get(url, headers={"Accept-Encoding": "gzip"}, timeout=5)
    except requests.ConnectionError:
        return None


def _gunicorn_master(make_pid: int) -> int | None:
    return next((pid for pid, args in children_of(make_pid) if "gunicorn" in args), None)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
