"""Does the site hold under load? Prints figures, then checks the accounts it made.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/NAME .venv/bin/python bench/load.py \\
        [--duration 60] [--clients 50] [--personas 400] [--workers 4] [--latency-ms 20]

Runs the site as production does -- gunicorn with project/gunicorn.conf.py
(WEB_CONCURRENCY=--workers, DEBUG=0, hashed static files) on a scratch PostgreSQL
database created beside DATABASE_URL's and dropped at the end (SQLite when
DATABASE_URL is not PostgreSQL) -- against the X sandbox with --latency-ms on every
X call, its rate limit raised and --personas people added through its control API.

Then for --duration seconds, --clients browsers each repeat: a full OAuth 1.0a
sign-in (GET /login/, POST "Sign in with X", allow on X's consent page, GET the
callback) as a random persona -- so the same person sometimes signs in from two
browsers at once -- followed by three views of /profile/. One staff browser signs
in to the admin and pages through the profiles changelist the whole time.

Prints requests/s and sign-ins/s, p50/p95/p99 of the site's requests (X's consent
page excluded) and the errors (target: 0), then checks in the database that each
person who signed in has exactly one user, one profile and one active token.
"""

import argparse
import http.client
import os
import random
import re
import secrets
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    ScratchDatabase,
    manage,
    prepare_site,
    site_environment,
    start_gunicorn,
)
from tests.sandbox import SandboxControl, SandboxProcess  # noqa: E402

CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
STAFF_USER, STAFF_PASSWORD = "load-staff", secrets.token_urlsafe(16)
TIMEOUT = 30
PROFILE_VIEWS = 3


@dataclass
class Tally:
    """What every browser measured; appended to from many threads under one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies_ms: list[float] = field(default_factory=list)
    sign_ins: int = 0
    staff_pages: int = 0
    errors: Counter = field(default_factory=Counter)
    signed_in: set[str] = field(default_factory=set)

    def request(self, ms: float) -> None:
        with self.lock:
            self.latencies_ms.append(ms)

    def error(self, what: str) -> None:
        with self.lock:
            self.errors[what] += 1


class Browser:
    """Cookies and one kept-alive connection per host, as a browser tab has."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.cookies: dict[str, str] = {}
        self.connections: dict[str, http.client.HTTPConnection] = {}

    def _connection(self, netloc: str) -> http.client.HTTPConnection:
        if netloc not in self.connections:
            host, port = netloc.split(":")
            self.connections[netloc] = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
        return self.connections[netloc]

    def send(self, method: str, url: str, form: dict | None = None, *, site: bool = True):
        parts = urlsplit(url)
        headers = {}
        if site and self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = urlencode(form) if form is not None else None
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        started = time.perf_counter()
        for attempt in (1, 2):
            connection = self._connection(parts.netloc)
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                text = response.read().decode()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closed a kept-alive connection between requests (as
                # gunicorn does at max_requests); a browser reconnects and resends.
                connection.close()
                del self.connections[parts.netloc]
                if attempt == 2:
                    raise
        if site:
            self.tally.request((time.perf_counter() - started) * 1000)
            for header in response.headers.get_all("Set-Cookie") or []:
                for name, morsel in SimpleCookie(header).items():
                    if morsel.value and morsel["max-age"] != "0":
                        self.cookies[name] = morsel.value
                    else:
                        self.cookies.pop(name, None)
        return response.status, response.headers, text

    def close(self) -> None:
        for connection in self.connections.values():
            connection.close()


def expect(tally: Tally, what: str, ok: bool) -> bool:
    if not ok:
        tally.error(what)
    return ok


def sign_in_and_browse(site: str, persona: str, tally: Tally) -> None:
    browser = Browser(tally)
    try:
        status, _, page = browser.send("GET", site + "/login/")
        if not expect(tally, "GET /login/", status == 200):
            return
        csrf = CSRF_INPUT.search(page).group(1)
        status, headers, _ = browser.send(
            "POST", site + "/accounts/twitter/login/", {"csrfmiddlewaretoken": csrf}
        )
        if not expect(tally, "POST sign in with X", status == 302):
            return
        status, headers, _ = browser.send(
            "POST", headers["Location"], {"persona": persona, "decision": "allow"}, site=False
        )
        if not expect(tally, "consent at X", status == 302):
            return
        status, headers, _ = browser.send("GET", headers["Location"])
        if not expect(tally, "callback", status == 302 and headers["Location"] == "/profile/"):
            return
        with tally.lock:
            tally.sign_ins += 1
            tally.signed_in.add(persona)
        for _ in range(PROFILE_VIEWS):
            status, _, page = browser.send("GET", site + "/profile/")
            expect(tally, "GET /profile/", status == 200 and f"@{persona}" in page)
    except (OSError, http.client.HTTPException) as error:
        tally.error(f"connection: {type(error).__name__}")
    finally:
        browser.close()


def client_loop(site: str, personas: list[str], tally: Tally, deadline: float) -> None:
    rng = random.Random()
    while time.monotonic() < deadline:
        sign_in_and_browse(site, rng.choice(personas), tally)


def staff_loop(site: str, tally: Tally, deadline: float) -> None:
    browser = Browser(tally)
    status, _, page = browser.send("GET", site + "/admin/login/")
    csrf = CSRF_INPUT.search(page).group(1)
    status, _, _ = browser.send(
        "POST",
        site + "/admin/login/?next=/admin/",
        {"username": STAFF_USER, "password": STAFF_PASSWORD, "csrfmiddlewaretoken": csrf},
    )
    if not expect(tally, "staff login", status == 302):
        return
    page_number = 1
    while time.monotonic() < deadline:
        try:
            status, _, page = browser.send(
                "GET", f"{site}/admin/accounts/profile/?p={page_number}"
            )
        except (OSError, http.client.HTTPException) as error:
            tally.error(f"staff connection: {type(error).__name__}")
            browser = Browser(tally)
            continue
        if expect(tally, "profiles changelist", status == 200 and "result_list" in page):
            with tally.lock:
                tally.staff_pages += 1
        # Page on while there are more pages, then start again from the first.
        page_number = page_number + 1 if f"?p={page_number + 1}" in page else 1
    browser.close()


# --- afterwards ------------------------------------------------------------------------------


def check_accounts(env: dict[str, str], signed_in: set[str]) -> list[str]:
    """Each person: one user, one profile, one active OAuth 1.0a token. Returns problems."""
    os.environ.update(
        {
            k: env[k]
            for k in ("DATABASE_URL", "DEBUG", "SECRET_KEY", "X_SANDBOX", "DJANGO_SETTINGS_MODULE")
        }
    )
    os.environ.update(TOKEN_ENCRYPTION_KEYS=env["TOKEN_ENCRYPTION_KEYS"], LOG_LEVEL="WARNING")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db.models import Count, Q

    from accounts.models import Profile, TokenStatus

    problems = []
    profiles = (
        Profile.objects.filter(screen_name__in=signed_in)
        .values("screen_name")
        .annotate(
            profiles=Count("pk", distinct=True),
            users=Count("user", distinct=True),
            active=Count("tokens", filter=Q(tokens__status=TokenStatus.ACTIVE), distinct=True),
            tokens=Count("tokens", distinct=True),
        )
    )
    found = {row["screen_name"]: row for row in profiles}
    for name in sorted(signed_in):
        row = found.get(name)
        if row is None:
            problems.append(f"@{name}: signed in but has no profile")
        elif (row["profiles"], row["users"], row["active"], row["tokens"]) != (1, 1, 1, 1):
            problems.append(f"@{name}: {row}")
    strays = (
        get_user_model().objects.filter(is_staff=False, x_profile__x_user_id__isnull=True).count()
    )
    if strays:
        problems.append(f"{strays} users without an X account (half-finished sign-ups)")
    return problems


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def report(tally: Tally, seconds: float, args, vendor: str) -> None:
    latencies = tally.latencies_ms
    print(
        f"load: {args.clients} browsers + 1 staff for {seconds:.0f} s; gunicorn "
        f"{args.workers} workers (project/gunicorn.conf.py) on {vendor}; "
        f"X sandbox {args.latency_ms} ms per call, {args.personas} personas"
    )
    print(f"  site requests      {len(latencies):8d}   {len(latencies) / seconds:7.1f} /s")
    print(f"  sign-ins with X    {tally.sign_ins:8d}   {tally.sign_ins / seconds:7.1f} /s")
    print(f"  staff list pages   {tally.staff_pages:8d}   {tally.staff_pages / seconds:7.1f} /s")
    if latencies:
        p50, p95, p99 = (percentile(latencies, f) for f in (0.5, 0.95, 0.99))
        print(f"  latency            p50 {p50:6.1f} ms   p95 {p95:6.1f} ms   p99 {p99:6.1f} ms")
    print(f"  errors             {sum(tally.errors.values()):8d}   {dict(tally.errors) or ''}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--clients", type=int, default=50, help="concurrent browsers")
    parser.add_argument("--personas", type=int, default=400, help="people on X to sign in as")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--latency-ms", type=int, default=20, help="sandbox delay per X call")
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory(prefix="bench-load-") as tmp,
        ScratchDatabase("load") as database,
        SandboxProcess(latency_ms=args.latency_ms) as sandbox,
    ):
        workdir = Path(tmp)
        control = SandboxControl(sandbox.base_url)
        control.config(rate_limit=10**9)  # X's per-app window would stop a load test cold
        personas = [f"load_person_{n:04d}" for n in range(args.personas)]
        control.add_personas([{"screen_name": name} for name in personas])
        env = site_environment(
            database.url,
            workdir,
            sandbox.base_url,
            WEB_CONCURRENCY=str(args.workers),
            DB_WORKERS="0",
            DJANGO_SUPERUSER_PASSWORD=STAFF_PASSWORD,
        )
        prepare_site(env)
        superuser = ["--username", STAFF_USER, "--email", "s@example.com"]
        manage(env, "createsuperuser", "--noinput", *superuser)
        tally = Tally()
        gunicorn_arguments = ["--config", "project/gunicorn.conf.py"]
        with start_gunicorn(env, gunicorn_arguments, workdir / "site.log") as site:
            deadline = time.monotonic() + args.duration
            started = time.monotonic()
            threads = [threading.Thread(target=staff_loop, args=(site, tally, deadline))]
            threads += [
                threading.Thread(target=client_loop, args=(site, personas, tally, deadline))
                for _ in range(args.clients)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            seconds = time.monotonic() - started
        report(tally, seconds, args, database.engine)
        log_text = (workdir / "site.log").read_text()
        leaked = [s for s in control.secrets() if s and s in log_text]
        print(
            f"  site log           {len(log_text.splitlines()):8d} lines; "
            f"{len(leaked)} of the sandbox's {len(control.secrets())} secrets in it"
        )
        problems = check_accounts(env, tally.signed_in)
        print(
            f"  accounts           {len(tally.signed_in):8d} people signed in; "
            + ("each has one user and one active token" if not problems else "PROBLEMS:")
        )
        for problem in problems[:20]:
            print(f"    {problem}")


if __name__ == "__main__":
    main()
