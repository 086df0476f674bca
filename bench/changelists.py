"""Do the Profiles and X tokens lists stay fast at a million rows? Prints figures; asserts nothing.

    .venv/bin/python bench/changelists.py [--people 1000000] [--requests 20]

Seeds N people (bench/people.py: a user and a profile each, N tokens in all) into
a scratch database -- a temporary SQLite file, or, when DATABASE_URL points at
PostgreSQL, a scratch database created beside it and dropped at the end -- then
serves the site with gunicorn and production settings (DEBUG=0, hashed static
files) and, logged in as a superuser, fetches the first page of

  /admin/accounts/profile/   /admin/accounts/xtoken/   /admin/auth/user/

in turn, --requests times each, so the machine's drift hits all three alike. The
user list is the yardstick: Django's UserAdmin over the same number of rows (the
site adds an X account and token column to it, as it shows them to staff).
Queries per page are counted in this process with Django's test client on the
same database, as gunicorn's workers cannot be asked.

Target (issue 19): each list <= 2x the user list in median time, with the same
number of queries at any size (tests/test_admin_big_lists.py proves the latter).
"""

import argparse
import os
import re
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    ScratchDatabase,
    cpu_reference_ms,
    prepare_site,
    site_environment,
    start_gunicorn,
)
from bench.people import seed_people  # noqa: E402

PAGES = {
    "profiles": "/admin/accounts/profile/",
    "X tokens": "/admin/accounts/xtoken/",
    "users (yardstick)": "/admin/auth/user/",
}
STAFF_USER, STAFF_PASSWORD = "bench-staff", secrets.token_urlsafe(16)
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
COUNT = re.compile(r"\bCOUNT\(\*\)")


def seed(people: int) -> None:
    from django.contrib.auth import get_user_model

    started = time.perf_counter()
    seed_people(people, progress=lambda text: print(text, flush=True))
    get_user_model().objects.create_superuser(STAFF_USER, "bench@example.com", STAFF_PASSWORD)
    print(f"  seeded in {time.perf_counter() - started:.1f} s", flush=True)


def count_queries() -> dict[str, tuple[int, int]]:
    """(queries, of which COUNT(*)) per page, from Django's test client in this process."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(get_user_model().objects.get(username=STAFF_USER))
    counts = {}
    for name, path in PAGES.items():
        client.get(path)
        with CaptureQueriesContext(connection) as queries:
            response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        sql = [query["sql"] for query in queries.captured_queries]
        counts[name] = (len(sql), len([text for text in sql if COUNT.search(text)]))
    return counts


def log_in(site: str) -> requests.Session:
    session = requests.Session()
    page = session.get(site + "/admin/login/", timeout=30)
    csrf = CSRF_INPUT.search(page.text).group(1)
    answer = session.post(
        site + "/admin/login/?next=/admin/",
        {"username": STAFF_USER, "password": STAFF_PASSWORD, "csrfmiddlewaretoken": csrf},
        allow_redirects=False,
        timeout=30,
    )
    if answer.status_code != 302:
        raise SystemExit(f"staff login failed: {answer.status_code}")
    return session


def time_pages(site: str, requests_per_page: int) -> dict[str, list[float]]:
    session = log_in(site)
    for path in PAGES.values():  # warm up: templates, connections, the first page's rows
        for _ in range(2):
            session.get(site + path, timeout=120).raise_for_status()
    timings: dict[str, list[float]] = {name: [] for name in PAGES}
    for _ in range(requests_per_page):
        for name, path in PAGES.items():
            started = time.perf_counter()
            response = session.get(site + path, timeout=120)
            timings[name].append((time.perf_counter() - started) * 1000)
            if response.status_code != 200 or "result_list" not in response.text:
                raise SystemExit(f"{path} answered {response.status_code} without a list")
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch, ScratchDatabase("changelists") as database:
        workdir = Path(scratch)
        env = site_environment(
            database.url,
            workdir,
            LOG_LEVEL="WARNING",
            LOG_FORMAT="text",
            DB_WORKERS="0",
            WEB_CONCURRENCY="1",
            WEB_THREADS="1",
        )
        print(f"Preparing the site and {args.people:,} people ({database.engine})...", flush=True)
        prepare_site(env)
        os.environ.update(env)
        import django

        django.setup()
        seed(args.people)
        queries = count_queries()
        from django.db import connections

        connections.close_all()

        arguments = ["-c", "project/gunicorn.conf.py"]
        with start_gunicorn(env, arguments, workdir / "gunicorn.log") as site:
            timings = time_pages(site, args.requests)

    print(f"\nCPU reference: {cpu_reference_ms():.1f} ms (lower is a faster machine right now)")
    print(f"{'first page of':<22} {'median':>10} {'p90':>10} {'queries':>8} {'COUNT(*)':>9}")
    medians = {}
    for name, values in timings.items():
        medians[name] = statistics.median(values)
        p90 = statistics.quantiles(values, n=10)[-1]
        total, counts = queries[name]
        print(f"{name:<22} {medians[name]:8.1f}ms {p90:8.1f}ms {total:>8} {counts:>9}")
    yardstick = medians["users (yardstick)"]
    for name in ("profiles", "X tokens"):
        print(f"ratio {name}/users: {medians[name] / yardstick:.2f}x   (target <= 2x)")


if __name__ == "__main__":
    main()
