"""Test support for the X sandbox: a real subprocess, a control-API client, and fixtures.

Loaded as a pytest plugin from tests/conftest.py. Benchmarks import
`SandboxProcess` and `SandboxControl` from here too. The sandbox runs as a
separate process (not a thread in the test process) so tests exercise it over
real sockets exactly as the site does.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_SECONDS = 15


class TimeoutSession(requests.Session):
    """A requests session that never waits forever: a hung sandbox fails the test instead."""

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return super().request(*args, **kwargs)


class SandboxProcess:
    """`python -m x_sandbox` on a free loopback port, e.g. `SandboxProcess(latency_ms=50)`.

    Keyword options become CLI flags (`rate_limit=1000` -> `--rate-limit 1000`;
    a list repeats the flag; True is a bare switch). The port is chosen by the
    sandbox itself (`--port 0`) and read from its first output line, so two runs
    can never race for a port.
    """

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.base_url = ""
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> SandboxProcess:
        command = [sys.executable, "-m", "x_sandbox", "--host", "127.0.0.1", "--port", "0"]
        command += self._flags()
        self._process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        banner = self._process.stdout.readline().strip()
        if not banner.startswith("x_sandbox listening on "):
            self.stop()
            raise RuntimeError(f"x_sandbox did not start: {banner!r}")
        self.base_url = banner.rsplit(" ", 1)[1]
        self._wait_until_answering()
        return self

    @property
    def pid(self) -> int:
        """The sandbox's process id (benches read its CPU time from /proc)."""
        assert self._process is not None, "the sandbox is not started"
        return self._process.pid

    def _flags(self) -> list[str]:
        flags = []
        for name, value in self.options.items():
            flag = "--" + name.replace("_", "-")
            if value is True:
                flags.append(flag)
                continue
            for item in value if isinstance(value, list) else [value]:
                flags += [flag, str(item)]
        return flags

    def _wait_until_answering(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while True:
            try:
                requests.get(self.base_url + "/_sandbox/config", timeout=1).raise_for_status()
                return
            except requests.RequestException:
                if time.monotonic() > deadline:
                    self.stop()
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._process = None

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class SandboxControl:
    """Thin client for the `/_sandbox/` control API (documented in x_sandbox/__init__.py)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = TimeoutSession()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(
            method, self.base_url + "/_sandbox/" + path, json=body, timeout=60
        )
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        self._call("POST", "reset")

    def personas(self) -> list[dict[str, Any]]:
        return self._call("GET", "personas")["personas"]

    def add_personas(
        self, personas: dict[str, Any] | list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        return self._call("POST", "personas", personas)["personas"]

    def update_persona(self, screen_name: str, **fields: Any) -> dict[str, Any]:
        return self._call("PATCH", f"personas/{screen_name}", fields)

    def fault(
        self,
        path: str,
        status: int | None = None,
        times: int = 1,
        delay_ms: int | None = None,
        drop: bool = False,
        late_ms: int | None = None,
        message: str | None = None,
    ) -> None:
        body: dict[str, Any] = {"path": path, "times": times, "drop": drop}
        if message is not None:
            body["message"] = message
        if status is not None:
            body["status"] = status
        if delay_ms is not None:
            body["delay_ms"] = delay_ms
        if late_ms is not None:
            body["late_ms"] = late_ms
        self._call("POST", "faults", body)

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def advance_clock(self, seconds: float) -> None:
        self._call("POST", "clock", {"advance_seconds": seconds})

    def revoke(self, token: str) -> None:
        self._call("POST", "revoke", {"token": token})

    def issue_tokens(
        self,
        screen_name: str,
        kind: str,
        scope: str = "tweet.read users.read offline.access",
        count: int = 1,
    ) -> list[dict[str, Any]]:
        body = {"screen_name": screen_name, "kind": kind, "scope": scope, "count": count}
        return self._call("POST", "tokens", body)["tokens"]

    def secrets(self) -> list[str]:
        return self._call("GET", "tokens")["secrets"]

    def tokens(self) -> dict[str, Any]:
        """Every credential issued and its state (spent, revoked) at the sandbox."""
        return self._call("GET", "tokens")

    def calls(self) -> list[dict[str, Any]]:
        return self._call("GET", "calls")["calls"]

    def config(self, **changes: Any) -> dict[str, Any]:
        return self._call("POST", "config", changes)


def point_browser_site_at(settings: Any, base_url: str) -> None:
    """Send the site's calls and redirects to X at `base_url`, its CSP allowing it there.

    The Content-Security-Policy is built from X's base URLs when settings load, so a
    test that moves X after that rebuilds it the same way; without it a browser
    refuses the sign-in redirect to X (form-action).
    """
    from project.csp import content_security_policy

    settings.X_API_BASE_URL = settings.X_WEB_BASE_URL = base_url
    settings.CONTENT_SECURITY_POLICY = content_security_policy(base_url, base_url, x_sandbox=True)


@pytest.fixture(scope="session")
def x_sandbox_process() -> Iterator[SandboxProcess]:
    """One sandbox process for the whole test run."""
    with SandboxProcess() as process:
        yield process


@pytest.fixture
def x_sandbox(x_sandbox_process: SandboxProcess) -> SandboxControl:
    """The shared sandbox, reset to a fresh state before the test."""
    control = SandboxControl(x_sandbox_process.base_url)
    control.reset()
    return control
