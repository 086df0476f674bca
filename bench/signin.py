"""How fast is "Sign in with X" (OAuth 1.0a), and how much of it is the site? Prints figures.

    .venv/bin/python bench/signin.py [--count 200] [--personas 20] [--workers 2]
                                     [--concurrency 4] [--latency-ms 0]

Starts the X sandbox (tests.sandbox.SandboxProcess, rate limit raised so repeated
sign-ins are not throttled) and the site under gunicorn (production settings:
DEBUG=0, hashed static files, a scratch SQLite database migrated first), then runs
full sign-ins over loopback HTTP the way a browser does:

    GET /login/ -> POST "Sign in with X (OAuth 1.0a)" -> [consent page at X: allow]
    -> GET the callback -> GET /profile/

Each sign-in is interleaved with the same OAuth 1.0a calls the site makes
(request_token, access_token, verify_credentials), signed the same way and sent
straight to the sandbox over a kept-alive connection, as the site sends them: that
is the baseline for time spent waiting on X, measured in the same run. Requests
use http.client, the lightest client there is, so the benchmark's own work adds as
little as it can to the site's figure (it is not subtracted: the TCP connect and
response parsing of each of the 4 requests count as the site's).
The site's own share of a sign-in is its total minus the consent page (the person
at X) minus that baseline.
Target: <= 20 ms at the median on SQLite on this machine. A fixed CPU workload is
timed before, after and at the start of each round: on a shared host the same code
can run twice as slowly for seconds at a time, and this shows when it did.

Personas rotate, so the first round signs people up and later rounds sign them
back in. Afterwards the gunicorn log is searched for every secret the sandbox issued.
"""

import argparse
import http.client
import json
import os
import re
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from oauthlib.oauth1 import Client as OAuth1Client

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    cpu_reference_ms,
    prepare_site,
    site_environment,
    start_gunicorn,
)
from tests.sandbox import SandboxControl, SandboxProcess  # noqa: E402

CONSUMER_KEY, CONSUMER_SECRET = "sandbox-consumer-key", "sandbox-consumer-secret"
VERIFY_PATH = "/1.1/account/verify_credentials.json"
VERIFY_PARAMS = {"include_email": "false", "skip_status": "true", "include_entities": "false"}
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
TIMEOUT = 30


@dataclass
class SignIn:
    total_ms: float
    consent_ms: float
    x_calls_ms: dict[str, float]

    @property
    def site_ms(self) -> float:
        return self.total_ms - self.consent_ms - sum(self.x_calls_ms.values())


def elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    text: str

    def location(self) -> str:
        return self.headers.get("Location", "")


def send(
    method: str,
    url: str,
    body: str = "",
    headers: dict | None = None,
    connection: http.client.HTTPConnection | None = None,
) -> Answer:
    """One HTTP request with http.client, on a fresh connection unless one is given.

    A light client keeps its own cost out of the figures. The site's sync gunicorn
    workers close every connection anyway; the site keeps its connection to X alive,
    so the baseline does too.
    """
    parts = urlsplit(url)
    own = connection is None
    if own:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT)
    headers = dict(headers or {})
    if body:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(method, path, body=body or None, headers=headers)
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read().decode())
    finally:
        if own:
            connection.close()


class Browser:
    """Just enough of a browser for the sign-in: a cookie jar per site."""

    def __init__(self) -> None:
        self.cookies: dict[str, str] = {}

    def send(self, method: str, url: str, form: dict | None = None) -> Answer:
        headers = {}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        answer = send(method, url, urlencode(form) if form else "", headers)
        for header in answer.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                if morsel.value and morsel["max-age"] != "0":
                    self.cookies[name] = morsel.value
                else:
                    self.cookies.pop(name, None)
        return answer


# --- the site and the sandbox ----------------------------------------------------------


def add_personas(control: SandboxControl, count: int) -> list[str]:
    names = [f"bench_person_{index:03d}" for index in range(count)]
    control.add_personas(
        [
            {"screen_name": name, "name": f"Bench Person {index}"}
            for index, name in enumerate(names)
        ]
    )
    return names


# --- one sign-in through the site --------------------------------------------------------


def sign_in_through_site(site: str, persona: str) -> tuple[float, float]:
    """A browser's full OAuth 1.0a sign-in; returns (total ms, ms spent on X's consent page)."""
    browser = Browser()
    started = time.perf_counter()
    login_page = browser.send("GET", site + "/login/")
    csrf = CSRF_INPUT.search(login_page.text).group(1)
    to_x = browser.send("POST", site + "/accounts/twitter/login/", {"csrfmiddlewaretoken": csrf})
    assert to_x.status == 302, (to_x.status, to_x.text[:300])
    consent_started = time.perf_counter()
    back = send("POST", to_x.location(), urlencode({"persona": persona, "decision": "allow"}))
    consent_ms = elapsed_ms(consent_started)
    assert back.status == 302, back.text
    signed_in = browser.send("GET", back.location())
    assert signed_in.location() == "/profile/", (signed_in.status, signed_in.text[:300])
    profile = browser.send("GET", site + "/profile/")
    assert profile.status == 200 and persona in profile.text, profile.status
    return elapsed_ms(started), consent_ms


# --- the same calls straight to X -------------------------------------------------------------


class XBaseline:
    """The three calls the site makes to X for one sign-in, sent straight to the sandbox.

    Signed like the site signs them (HMAC-SHA1) and sent over one kept-alive
    connection, as the site's are; each call is timed on its own.
    """

    def __init__(self, sandbox: str) -> None:
        self.sandbox = sandbox
        parts = urlsplit(sandbox)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT)

    def _timed(self, calls: dict[str, float], name: str, method: str, url: str, **oauth) -> dict:
        client = OAuth1Client(CONSUMER_KEY, client_secret=CONSUMER_SECRET, **oauth)
        url, headers, _ = client.sign(url, http_method=method)
        started = time.perf_counter()
        answer = send(method, url, headers=headers, connection=self.connection)
        calls[name] = elapsed_ms(started)
        assert answer.status == 200, (name, answer.status, answer.text[:200])
        return dict(parse_qsl(answer.text))

    def sign_in(self, persona: str) -> dict[str, float]:
        calls: dict[str, float] = {}
        sandbox = self.sandbox
        callback = "http://127.0.0.1:9/accounts/twitter/login/callback/"
        request_token = self._timed(
            calls, "request_token", "POST", sandbox + "/oauth/request_token", callback_uri=callback
        )
        consent = send(
            "POST",
            f"{sandbox}/oauth/authenticate?oauth_token={request_token['oauth_token']}",
            urlencode({"persona": persona, "decision": "allow"}),
        )
        verifier = dict(parse_qsl(urlsplit(consent.location()).query))["oauth_verifier"]
        access = self._timed(
            calls,
            "access_token",
            "POST",
            f"{sandbox}/oauth/access_token?{urlencode({'oauth_verifier': verifier})}",
            resource_owner_key=request_token["oauth_token"],
            resource_owner_secret=request_token["oauth_token_secret"],
        )
        self._timed(
            calls,
            "verify_credentials",
            "GET",
            f"{sandbox}{VERIFY_PATH}?{urlencode(VERIFY_PARAMS)}",
            resource_owner_key=access["oauth_token"],
            resource_owner_secret=access["oauth_token_secret"],
        )
        return calls


def measured_sign_in(site: str, baseline: XBaseline, persona: str) -> SignIn:
    total_ms, consent_ms = sign_in_through_site(site, persona)
    return SignIn(total_ms, consent_ms, baseline.sign_in(persona))


# --- report ------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def report(results: list[SignIn], wall_seconds: float, args, concurrent_rate: float) -> None:
    def line(label: str, values: list[float]) -> str:
        median, p90 = statistics.median(values), percentile(values, 0.9)
        return f"  {label:<38}{median:7.1f} ms median {p90:7.1f} ms p90"

    calls = {name: [r.x_calls_ms[name] for r in results] for name in results[0].x_calls_ms}
    site_median = statistics.median(r.site_ms for r in results)
    print(
        f"Sign in with X (OAuth 1.0a): {len(results)} sign-ins over {args.personas} personas; "
        f"gunicorn -w {args.workers}, SQLite, sandbox latency {args.latency_ms} ms"
    )
    print(f"  sequential throughput (site sign-ins only) {len(results) / wall_seconds:7.1f} /s")
    print(f"  concurrent throughput ({args.concurrency} browsers)      {concurrent_rate:7.1f} /s")
    print(line("total per sign-in (4 site requests)", [r.total_ms for r in results]))
    print(line("  at X: consent page (the person)", [r.consent_ms for r in results]))
    for name, values in calls.items():
        print(line(f"  at X: {name} (baseline)", values))
    print(line("  site's own share", [r.site_ms for r in results]))
    size = max(1, len(results) // args.rounds)
    by_round = [
        statistics.median(r.site_ms for r in results[start : start + size])
        for start in range(0, size * args.rounds, size)
    ]
    print(
        f"  site's own share by round of {size}: "
        + " ".join(f"{median:.1f}" for median in by_round)
        + f" ms (least disturbed round: {min(by_round):.1f} ms)"
    )
    print(
        "  CPU reference at the start of each round: "
        + " ".join(f"{value:.1f}" for value in args.cpu_by_round[: len(by_round)])
        + " ms (the same work each time; higher means the machine ran slower)"
    )
    verdict = "meets" if site_median <= 20 else "MISSES"
    print(f"  site's own share at the median: {site_median:.1f} ms ({verdict} the 20 ms target)")
    print(
        f"  machine: {os.cpu_count()} CPUs, 1-minute load average {args.load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after; CPU reference {args.cpu_before:.1f} ms before, "
        f"{cpu_reference_ms():.1f} ms after"
    )


def concurrent_rate(site: str, personas: list[str], count: int, concurrency: int) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(
            pool.map(
                lambda index: sign_in_through_site(site, personas[index % len(personas)]),
                range(count),
            )
        )
    return count / (time.perf_counter() - started)


def server_times(log_path: Path) -> None:
    """Per-request handling time as the site itself logs it (project.request JSON lines).

    Shows where the site's share goes; skipped if the log format is not JSON.
    """
    durations: dict[str, list[float]] = {}
    for line in log_path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "duration_ms" in record and "path" in record:
            key = f"{record.get('method', '')} {record['path']}"
            durations.setdefault(key, []).append(record["duration_ms"])
    if durations:
        print("  inside the site (its request log, X calls included):")
        for key, values in durations.items():
            print(f"    {key:<42}{statistics.median(values):6.1f} ms median")


def check_log(log_path: Path, control: SandboxControl) -> None:
    text = log_path.read_text()
    issued = [secret for secret in control.secrets() if secret]
    found = [secret for secret in issued if secret in text]
    print(
        f"  site log: {len(text.splitlines())} lines searched for the {len(issued)} secrets "
        f"the sandbox issued: {len(found)} found"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200, help="measured sign-ins")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--personas", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--latency-ms", type=int, default=0, help="sandbox delay per API call")
    parser.add_argument(
        "--rounds", type=int, default=5, help="report the site's share per consecutive round too"
    )
    args = parser.parse_args()
    args.load_before = os.getloadavg()[0]
    args.cpu_before = cpu_reference_ms()

    with (
        tempfile.TemporaryDirectory(prefix="bench-signin-") as tmp,
        SandboxProcess(rate_limit=10**9, latency_ms=args.latency_ms) as sandbox,
    ):
        workdir = Path(tmp)
        control = SandboxControl(sandbox.base_url)
        personas = add_personas(control, args.personas)
        env = site_environment(f"sqlite:///{workdir / 'bench.sqlite3'}", workdir, sandbox.base_url)
        prepare_site(env)
        with start_gunicorn(
            env,
            ["project.wsgi", "--workers", str(args.workers)],
            workdir / "site.log",
            ready_path="/login/",
            timeout=30,
        ) as site:
            baseline = XBaseline(sandbox.base_url)
            for index in range(args.warmup):
                measured_sign_in(site, baseline, personas[index % len(personas)])
            results, site_seconds = [], 0.0
            round_size = max(1, args.count // args.rounds)
            args.cpu_by_round = []
            for index in range(args.count):
                if index % round_size == 0:
                    args.cpu_by_round.append(cpu_reference_ms())
                result = measured_sign_in(site, baseline, personas[index % len(personas)])
                results.append(result)
                site_seconds += result.total_ms / 1000
            rate = concurrent_rate(site, personas, args.count, args.concurrency)
            report(results, site_seconds, args, rate)
        server_times(workdir / "site.log")
        check_log(workdir / "site.log", control)


if __name__ == "__main__":
    main()
