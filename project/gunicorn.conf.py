"""Gunicorn for production: `gunicorn -c project/gunicorn.conf.py` (what `make serve` runs).

Besides the web workers, the arbiter starts `DB_WORKERS` background-job workers
(`manage.py db_worker`), restarts any that die and stops them when it exits, so
one command runs the whole site. Set `DB_WORKERS=0` on web machines when the
job workers run elsewhere.

Environment: `PORT` or `BIND`, `WEB_CONCURRENCY` (web worker processes),
`WEB_THREADS`, `WEB_TIMEOUT`, `DB_WORKERS`, `DB_WORKER_QUEUES`, `GUNICORN_ACCESS_LOG`.
"""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


wsgi_app = "project.wsgi:application"
chdir = str(PROJECT_ROOT)
bind = os.environ.get("BIND") or f"0.0.0.0:{_env_int('PORT', 8000)}"
# Web requests mostly wait on X and the database, so a few threads per process
# serve more people than extra processes would, at less memory.
workers = _env_int("WEB_CONCURRENCY", 2 * (os.cpu_count() or 1) + 1)
threads = _env_int("WEB_THREADS", 4)
worker_class = "gthread" if threads > 1 else "sync"
# A sign-in waits on X (X_HTTP_TIMEOUT, default 10 s, and retries); give it room,
# but kill a worker that hangs far beyond that.
timeout = _env_int("WEB_TIMEOUT", 60)
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then so a slow leak can never take the site down.
max_requests = 2000
max_requests_jitter = 200
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# Runtime control goes through signals (HUP, TTIN/TTOU); no control socket, so
# two instances on one machine never fight over its path.
control_socket_disable = True

# Access log on stdout. The path is %(U)s, never %(r)s or the referrer: OAuth
# callbacks carry `oauth_verifier`, `code` and `state` in the query string.
accesslog = "-" if os.environ.get("GUNICORN_ACCESS_LOG", "1") != "0" else None
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_secrets": {"()": "project.logging.RedactSecretsFilter"}},
    "formatters": {"json": {"()": "project.logging.JsonFormatter"}},
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "json",
            "filters": ["redact_secrets"],
        }
    },
    "root": {"handlers": ["stdout"], "level": loglevel.upper()},
    "loggers": {
        "gunicorn.error": {"handlers": ["stdout"], "level": loglevel.upper(), "propagate": False},
        "gunicorn.access": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
    },
}

DB_WORKERS = _env_int("DB_WORKERS", 1)
DB_WORKER_QUEUES = os.environ.get("DB_WORKER_QUEUES", "*")
RESTART_DELAY_SECONDS = 2.0


class JobWorkers:
    """Keep `count` db_worker processes running until `stop()`.

    The arbiter reaps every child it has (waitpid(-1)), ours included, so a dead
    worker shows up here as a finished process with no exit code worth trusting;
    it is restarted all the same, after a pause so a broken one cannot spin.
    """

    def __init__(self, count: int, log) -> None:
        self.count = count
        self.log = log
        self.processes: list[subprocess.Popen] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._supervise, name="db-workers", daemon=True)

    def _spawn(self) -> subprocess.Popen:
        command = [
            sys.executable,
            "manage.py",
            "db_worker",
            "--no-reload",
            "--queue-name",
            DB_WORKER_QUEUES,
        ]
        process = subprocess.Popen(command, cwd=PROJECT_ROOT)
        self.log.info("db_worker started (pid %s)", process.pid)
        return process

    def start(self) -> None:
        self.processes = [self._spawn() for _ in range(self.count)]
        self.thread.start()

    def _supervise(self) -> None:
        while not self.stopping.wait(1.0):
            for index, process in enumerate(self.processes):
                if process.poll() is None or self.stopping.is_set():
                    continue
                self.log.warning("db_worker (pid %s) exited; restarting", process.pid)
                time.sleep(RESTART_DELAY_SECONDS)
                if not self.stopping.is_set():
                    self.processes[index] = self._spawn()

    def stop(self) -> None:
        self.stopping.set()
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + graceful_timeout
        for process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()


_job_workers: JobWorkers | None = None


def when_ready(server) -> None:
    global _job_workers
    if DB_WORKERS > 0:
        _job_workers = JobWorkers(DB_WORKERS, server.log)
        _job_workers.start()


def on_exit(server) -> None:
    if _job_workers is not None:
        _job_workers.stop()
