"""Sign in with X (OAuth 1.0a): our site's own share of a sign-in, as a ratio to stock allauth.

    .venv/bin/python bench/signin.py [--rounds 8] [--batch 25] [--warmup 5]
                                     [--latency-ms 0] [--no-variants]

In one run, against one X sandbox (tests.sandbox.SandboxProcess, rate limit
raised), it starts under gunicorn, each on a SQLite file of its own:

- **stock**: django-allauth's quick start with allauth's own `twitter` provider
  only (bench/stock_site/: same Django and allauth versions, its X URLs pointed at
  the sandbox, its app a SocialApp row);
- **ours**: this site in production mode (DEBUG=0, bench.common.site_environment);
- unless --no-variants, ours without each documented speed setting it keeps, to
  show what that setting gains: `no-conn-reuse` (DATABASE_CONN_MAX_AGE=0, a new
  database connection per request) and `sqlite-defaults` (no WAL/synchronous=NORMAL
  `init_command`; bench/settings_sqlite_defaults.py).

All run the same gunicorn settings (project/gunicorn.conf.py, 2 workers x 4
threads, no job workers) and the same WSGI wrapper (bench/measured_wsgi.py), which
adds the statements each request ran and its time inside Django as headers.

Rounds alternate batches between the sites (in a new random order each round), so a
slower or busier stretch of this shared machine hits all alike. Every sign-in is a
new person on X (added through the sandbox's control API, untimed) in a new browser
(cookies, one kept-alive connection per host), sent as a browser sends it:

    GET the login page -> POST the provider's login URL with the CSRF token
    -> GET X's consent page -> POST "allow" -> GET the callback (a 302: signed in)

End to end is the client's time for all five. The site's own share is that minus
the time inside the sandbox: the person's two requests at X as the client timed
them, and the site's three calls to X (request_token, access_token,
verify_credentials) as the sandbox timed them (its call log's `duration_ms`).
So the loopback transit and HTTP client work of the site's calls to X count as
the site's, on both sites. Target: ours / stock <= 0.7 (median over the run).

Afterwards the per-request breakdown shows where each site's time goes, and our
gunicorn log is searched for every secret the sandbox issued.
"""

import argparse
import http.client
import random
import re
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    cpu_reference_ms,
    manage,
    prepare_site,
    site_environment,
    start_gunicorn,
)
from tests.sandbox import SandboxControl, SandboxProcess  # noqa: E402

CONSUMER_KEY, CONSUMER_SECRET = "sandbox-consumer-key", "sandbox-consumer-secret"
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
TIMEOUT = 30
STEPS = ("login page", "POST provider login", "callback")
# What each site step asks of X, in the order the sandbox logs the calls.
X_CALLS_BY_STEP = {
    "POST provider login": ("POST /oauth/request_token",),
    "callback": ("POST /oauth/access_token", "GET /1.1/account/verify_credentials.json"),
}
CONSENT_CALLS = ("GET /oauth/authenticate", "POST /oauth/authenticate")
CALLS_PER_SIGN_IN = 5
GUNICORN = ["--config", "project/gunicorn.conf.py", "bench.measured_wsgi:application"]
SAME_GUNICORN_SETTINGS = {"WEB_CONCURRENCY": "2", "WEB_THREADS": "4", "DB_WORKERS": "0"}
STOCK_SOCIAL_APP = (
    "from allauth.socialaccount.models import SocialApp; "
    f"SocialApp.objects.create(provider='twitter', name='X sandbox', "
    f"client_id='{CONSUMER_KEY}', secret='{CONSUMER_SECRET}')"
)


@dataclass(frozen=True)
class Site:
    name: str
    login_page: str
    provider_login: str
    signed_in_location: str
    env: dict[str, str]
    url: str = ""


@dataclass
class Step:
    client_ms: float
    django_ms: float
    statements: int
    x_ms: float = 0.0


@dataclass
class SignIn:
    total_ms: float
    consent_ms: float
    steps: dict[str, Step]

    @property
    def x_ms(self) -> float:
        return sum(step.x_ms for step in self.steps.values())

    @property
    def site_ms(self) -> float:
        return self.total_ms - self.consent_ms - self.x_ms

    @property
    def statements(self) -> int:
        return sum(step.statements for step in self.steps.values())


@dataclass
class Results:
    by_round: list[list[SignIn]] = field(default_factory=list)

    @property
    def all(self) -> list[SignIn]:
        return [sign_in for batch in self.by_round for sign_in in batch]


def elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


# --- a browser -------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    text: str
    client_ms: float

    def location(self) -> str:
        return self.headers.get("Location", "")

    def step(self) -> Step:
        return Step(
            client_ms=self.client_ms,
            django_ms=float(self.headers.get("X-Bench-Ms", "nan")),
            statements=int(self.headers.get("X-Bench-Statements", "0")),
        )


class Browser:
    """Cookies per host and one kept-alive connection per host, with http.client.

    The lightest client there is, so its own cost, counted in the site's share on
    both sites alike, stays small.
    """

    def __init__(self) -> None:
        self.cookies: dict[str, dict[str, str]] = {}
        self.connections: dict[str, http.client.HTTPConnection] = {}

    def send(self, method: str, url: str, form: dict | None = None) -> Answer:
        parts = urlsplit(url)
        jar = self.cookies.setdefault(parts.netloc, {})
        headers = {}
        if jar:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
        body = urlencode(form) if form is not None else None
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        started = time.perf_counter()
        connection = self.connections.get(parts.netloc)
        if connection is None:
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT)
            self.connections[parts.netloc] = connection
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        text = response.read().decode()
        answer = Answer(response.status, response.headers, text, elapsed_ms(started))
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                if morsel.value and morsel["max-age"] != "0":
                    jar[name] = morsel.value
                else:
                    jar.pop(name, None)
        return answer

    def close(self) -> None:
        for connection in self.connections.values():
            connection.close()


def sign_in(site: Site, persona: str) -> SignIn:
    """One person's full OAuth 1.0a sign-in, as a browser sends it (X's timings added later)."""
    browser = Browser()
    try:
        started = time.perf_counter()
        login_page = browser.send("GET", site.url + site.login_page)
        csrf = CSRF_INPUT.search(login_page.text)
        assert login_page.status == 200 and csrf, (site.name, login_page.status)
        to_x = browser.send(
            "POST", site.url + site.provider_login, {"csrfmiddlewaretoken": csrf.group(1)}
        )
        assert to_x.status == 302, (site.name, to_x.status, to_x.text[:300])
        consent_page = browser.send("GET", to_x.location())
        allowed = browser.send("POST", to_x.location(), {"persona": persona, "decision": "allow"})
        assert consent_page.status == 200 and allowed.status == 302, allowed.text[:300]
        callback = browser.send("GET", allowed.location())
        total_ms = elapsed_ms(started)
    finally:
        browser.close()
    assert callback.status == 302, (site.name, callback.status, callback.text[:300])
    assert callback.location() == site.signed_in_location, (site.name, callback.location())
    return SignIn(
        total_ms=total_ms,
        consent_ms=consent_page.client_ms + allowed.client_ms,
        steps={
            "login page": login_page.step(),
            "POST provider login": to_x.step(),
            "callback": callback.step(),
        },
    )


def attach_x_times(batch: list[SignIn], calls: list[dict]) -> None:
    """Add the sandbox's own time for the site's calls to each sign-in of a sequential batch."""
    assert len(calls) == CALLS_PER_SIGN_IN * len(batch), (len(calls), len(batch))
    for index, sign_in_result in enumerate(batch):
        mine = calls[index * CALLS_PER_SIGN_IN : (index + 1) * CALLS_PER_SIGN_IN]
        by_name = {f"{call['method']} {call['path']}": call for call in mine}
        assert all(call["status"] == 200 or call["status"] == 302 for call in mine), mine
        for step_name, call_names in X_CALLS_BY_STEP.items():
            step = sign_in_result.steps[step_name]
            step.x_ms = sum(by_name[name]["duration_ms"] for name in call_names)


def run_batch(
    site: Site, control: SandboxControl, size: int, counter: Iterator[int]
) -> tuple[list[SignIn], list[str]]:
    """`size` sign-ins of new people, one after another, with X's timings attached.

    Also returns every secret the sandbox issued for them, to search the site's log for.
    """
    personas = [f"b{next(counter):07d}" for _ in range(size)]
    # Not control.reset(): it would restart X's user ids, and the next batch's
    # "new" people would be returning ones to both sites.
    control.add_personas([{"screen_name": name, "name": name.upper()} for name in personas])
    started = time.time()  # the sandbox stamps calls with the same clock
    batch = [sign_in(site, persona) for persona in personas]
    attach_x_times(batch, [call for call in control.calls() if call["at"] >= started])
    return batch, control.secrets()


# --- the sites -------------------------------------------------------------------------


def stock_site(workdir: Path, sandbox_url: str) -> Site:
    directory = workdir / "stock"
    directory.mkdir()
    env = {
        **site_environment("", directory, sandbox_url),
        **SAME_GUNICORN_SETTINGS,
        "DJANGO_SETTINGS_MODULE": "bench.stock_site.settings",
        "STOCK_SITE_DATABASE": str(directory / "db.sqlite3"),
        "X_SANDBOX_URL": sandbox_url,
        "SECRET_KEY": secrets.token_urlsafe(50),
    }
    manage(env, "migrate", "--noinput")
    manage(env, "shell", "-c", STOCK_SOCIAL_APP)
    return Site("stock", "/accounts/login/", "/accounts/twitter/login/", "/accounts/profile/", env)


def our_site(name: str, workdir: Path, sandbox_url: str, **extra: str) -> Site:
    directory = workdir / name
    directory.mkdir()
    env = site_environment(
        f"sqlite:///{directory / 'db.sqlite3'}",
        directory,
        sandbox_url,
        **SAME_GUNICORN_SETTINGS,
        **extra,
    )
    prepare_site(env)
    return Site(name, "/login/", "/accounts/twitter/login/", "/profile/", env)


@contextmanager
def serving(sites: list[Site], workdir: Path) -> Iterator[list[Site]]:
    with ExitStack() as stack:
        running = []
        for site in sites:
            url = stack.enter_context(
                start_gunicorn(
                    site.env, GUNICORN, workdir / f"{site.name}.log", ready_path=site.login_page
                )
            )
            running.append(Site(**{**site.__dict__, "url": url}))
        yield running


# --- report ------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def median(values) -> float:
    return statistics.median(list(values))


def report(sites: list[Site], results: dict[str, Results], args) -> None:
    names = [site.name for site in sites]
    count = len(results["ours"].all)
    print(
        f"Sign in with X (OAuth 1.0a), new person each time: {args.rounds} rounds x "
        f"{args.batch} per site; gunicorn 2 workers x 4 threads; SQLite; "
        f"sandbox latency {args.latency_ms} ms; {count} sign-ins per site"
    )
    print(f"  {'':<38}" + "".join(f"{name:>17}" for name in names))

    def row(label: str, value) -> None:
        print(f"  {label:<38}" + "".join(f"{value(results[name].all):>17}" for name in names))

    def ms(pick, fraction=None):
        def figure(sign_ins: list[SignIn]) -> str:
            values = [pick(s) for s in sign_ins]
            shown = percentile(values, fraction) if fraction else median(values)
            return f"{shown:.1f} ms"

        return figure

    row("end to end, median", ms(lambda s: s.total_ms))
    row("end to end, p90", ms(lambda s: s.total_ms, 0.9))
    row("  at X: the person (consent page)", ms(lambda s: s.consent_ms))
    row("  at X: the site's 3 calls (sandbox)", ms(lambda s: s.x_ms))
    row("site's own share, median", ms(lambda s: s.site_ms))
    row("site's own share, p90", ms(lambda s: s.site_ms, 0.9))
    row("SQL statements per sign-in", lambda s: f"{median(x.statements for x in s):.0f}")

    print("  per request, median: client time / inside Django / at X / statements")
    for step_name in STEPS:
        print(f"    {step_name}")
        for name in names:
            steps = [s.steps[step_name] for s in results[name].all]
            print(
                f"      {name:<16}{median(x.client_ms for x in steps):7.1f} ms"
                f"{median(x.django_ms for x in steps):9.1f} ms"
                f"{median(x.x_ms for x in steps):9.1f} ms"
                f"{median(x.statements for x in steps):7.0f}"
            )

    def ratio_line(label: str, mine: str, theirs: str) -> float:
        per_round = [
            median(s.site_ms for s in a) / median(s.site_ms for s in b)
            for a, b in zip(results[mine].by_round, results[theirs].by_round, strict=True)
        ]
        overall = median(s.site_ms for s in results[mine].all) / median(
            s.site_ms for s in results[theirs].all
        )
        print(
            f"  {label:<60}per round "
            + " ".join(f"{value:.2f}" for value in per_round)
            + f"  overall {overall:.2f}"
        )
        return overall

    print(
        "Gains of the speed settings ours keeps (site's own share; above 1 = the setting helps):"
    )
    for variant, setting in (
        ("no-conn-reuse", "persistent connections (CONN_MAX_AGE=60)"),
        ("sqlite-defaults", "SQLite WAL + synchronous=NORMAL"),
    ):
        if variant in results:
            ratio_line(f"{setting}, without / with", variant, "ours")
    print("Site's own share, ours / stock allauth (target <= 0.70):")
    if "sqlite-defaults" in results:
        ratio_line("ours on SQLite's defaults, as stock runs / stock", "sqlite-defaults", "stock")
    overall = ratio_line("ours / stock", "ours", "stock")
    verdict = "meets" if overall <= 0.7 else "MISSES"
    print(f"  overall {overall:.2f}: {verdict} the 0.70 target")


def check_log(log_path: Path, issued: list[str]) -> None:
    text = log_path.read_text()
    found = [secret for secret in issued if secret and secret in text]
    print(
        f"Our site's log: {len(text.splitlines())} lines searched for the {len(issued)} "
        f"secrets the sandbox issued for its sign-ins: {len(found)} found"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--batch", type=int, default=25, help="sign-ins per site per round")
    parser.add_argument("--warmup", type=int, default=5, help="untimed sign-ins per site")
    parser.add_argument("--latency-ms", type=int, default=0, help="sandbox delay per X call")
    parser.add_argument(
        "--no-variants", action="store_true", help="skip ours-without-each-speed-setting"
    )
    args = parser.parse_args()
    cpu_before = cpu_reference_ms()

    with (
        tempfile.TemporaryDirectory(prefix="bench-signin-") as tmp,
        SandboxProcess(rate_limit=10**9, latency_ms=args.latency_ms) as sandbox,
    ):
        workdir = Path(tmp)
        control = SandboxControl(sandbox.base_url)
        sites = [
            stock_site(workdir, sandbox.base_url),
            our_site("ours", workdir, sandbox.base_url),
        ]
        if not args.no_variants:
            sites.append(
                our_site("no-conn-reuse", workdir, sandbox.base_url, DATABASE_CONN_MAX_AGE="0")
            )
            sites.append(
                our_site(
                    "sqlite-defaults",
                    workdir,
                    sandbox.base_url,
                    DJANGO_SETTINGS_MODULE="bench.settings_sqlite_defaults",
                )
            )
        counter = iter(range(10**7))
        results = {site.name: Results() for site in sites}
        issued_to_ours: list[str] = []
        with serving(sites, workdir) as running:
            for site in running:
                run_batch(site, control, args.warmup, counter)
            order = list(running)
            for _ in range(args.rounds):
                random.shuffle(order)
                for site in order:
                    batch, issued = run_batch(site, control, args.batch, counter)
                    results[site.name].by_round.append(batch)
                    if site.name == "ours":
                        issued_to_ours += issued
        report(running, results, args)
        check_log(workdir / "ours.log", issued_to_ours)
    print(f"  CPU reference {cpu_before:.1f} ms before, {cpu_reference_ms():.1f} ms after")


if __name__ == "__main__":
    main()
