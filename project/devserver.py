"""`make run`: the site, a background-job worker and, without X credentials, the X sandbox.

One foreground process owns the others so that Ctrl-C stops everything it started.
"""

import os
import signal
import socket
import subprocess
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402

SITE_ADDRESS = os.environ.get("RUN_ADDRESS", "127.0.0.1:8000")


def is_listening(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def start_sandbox() -> subprocess.Popen | None:
    """Start the bundled X sandbox unless one already answers on its port."""
    host, port = settings.X_SANDBOX_HOST, settings.X_SANDBOX_PORT
    if is_listening(host, port):
        print(f"X sandbox already running at http://{host}:{port}/ — reusing it.")
        return None
    process = subprocess.Popen(
        [sys.executable, "-m", "x_sandbox", "--host", host, "--port", str(port)]
    )
    deadline = time.monotonic() + 10
    while not is_listening(host, port):
        if process.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"The X sandbox did not start on {host}:{port}.")
        time.sleep(0.05)
    return process


def main() -> None:
    children: list[subprocess.Popen] = []
    if settings.X_SANDBOX:
        sandbox = start_sandbox()
        if sandbox:
            children.append(sandbox)
        print(
            f"No X credentials configured: using the bundled X sandbox at "
            f"{settings.X_API_BASE_URL} — not the real X."
        )
    children.append(subprocess.Popen([sys.executable, "manage.py", "db_worker"]))
    print(f"Serving http://{SITE_ADDRESS}/ (Ctrl-C stops the site, worker and sandbox).")
    site = subprocess.Popen([sys.executable, "manage.py", "runserver", SITE_ADDRESS])
    children.insert(0, site)
    # A terminal's Ctrl-C reaches every child anyway; SIGTERM from a supervisor does
    # not, so turn it into the same orderly shutdown.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        site.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop(children)


def stop(children: list[subprocess.Popen]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()


if __name__ == "__main__":
    main()
