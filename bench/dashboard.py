"""Does the dashboard keep the admin index fast at scale? Prints figures; asserts nothing.

    .venv/bin/python bench/dashboard.py [--profiles 100000] [--requests 60]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/xs .venv/bin/python bench/dashboard.py

Seeds N people (user, X profile, OAuth 2.0 token of every status, a month of
sign-ins), 5 bulk jobs of 2,000 items and 2,000 audit events into a scratch
database -- a temporary SQLite file, or, when DATABASE_URL points at PostgreSQL,
a scratch database created beside it and dropped at the end -- then serves the
admin index for a superuser from two gunicorn processes with production settings
(DEBUG=0, hashed static files): ours, with the dashboard, and Django's stock
index (bench/stock_index_settings.py: our template directory switched off), same
code and data. Requests alternate between the two, so drift in the machine's load
hits both alike. Nothing is cached: every render of ours reads every figure.

Target: dashboard <= 2x the stock index in median time; <= 10 queries.
"""

import argparse
import http.client
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    ScratchDatabase,
    cpu_reference_ms,
    prepare_site,
    site_environment,
    start_gunicorn,
)

STOCK_SETTINGS = "bench.stock_index_settings"


def seed(people: int) -> None:
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.utils import timezone

    from accounts.models import Profile, TokenKind, TokenStatus, XToken
    from admin_ext.models import AuditEvent, BulkJob, BulkJobItem, ItemStatus, SignInEvent

    User = get_user_model()
    now = timezone.now()
    statuses = TokenStatus.values
    batch = 5000
    for offset in range(0, people, batch):
        numbers = range(offset, min(offset + batch, people))
        with transaction.atomic():
            users = User.objects.bulk_create(
                User(
                    username=f"p{n:07d}", password="!", date_joined=now - timedelta(hours=n % 900)
                )
                for n in numbers
            )
            profiles = Profile.objects.bulk_create(
                Profile(
                    user=user,
                    x_user_id=str(3_000_000_000 + n),
                    screen_name=f"p{n:07d}",
                    sign_in_method=TokenKind.values[n % 2],
                )
                for n, user in zip(numbers, users, strict=True)
            )
            XToken.objects.bulk_create(
                XToken(
                    profile=profile,
                    kind=TokenKind.OAUTH2,
                    status=statuses[n % len(statuses)],
                    expires_at=now + timedelta(hours=n % 72 - 24),
                )
                for n, profile in zip(numbers, profiles, strict=True)
            )
            SignInEvent.objects.bulk_create(
                SignInEvent(user=user, method=TokenKind.OAUTH2) for user in users[::10]
            )
    for number in range(5):
        job = BulkJob.objects.create(action="refresh", created_by_label="bench", total=2000)
        BulkJobItem.objects.bulk_create(
            BulkJobItem(job=job, status=ItemStatus.values[(number + i) % 4]) for i in range(2000)
        )
    AuditEvent.objects.bulk_create(
        AuditEvent(actor_label="bench", action="refresh", screen_name=f"p{i:07d}", outcome="ok")
        for i in range(2000)
    )


def count_queries(session_cookie: str, *, stock: bool = False) -> int:
    """Queries one render of the index runs (in this process, same database)."""
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, override_settings

    client = Client(HTTP_HOST="127.0.0.1")
    client.cookies[settings.SESSION_COOKIE_NAME] = session_cookie
    templates = [{**settings.TEMPLATES[0], "DIRS": []}] if stock else settings.TEMPLATES
    with override_settings(TEMPLATES=templates), CaptureQueriesContext(connection) as queries:
        response = client.get("/admin/")
    assert response.status_code == 200, response.status_code
    assert (b"staff-dashboard" in response.content) is not stock
    return len(queries.captured_queries)


def render_ms(site: str, session_cookie: str) -> float:
    """Milliseconds for one GET /admin/ over loopback HTTP, on a fresh connection."""
    port = int(site.rsplit(":", 1)[1])
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("GET", "/admin/", headers={"Cookie": f"sessionid={session_cookie}"})
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    # Both indexes list the user model (ours in its "Accounts" group): the page is whole.
    assert response.status == 200 and b'class="model-user' in body, response.status
    return (time.perf_counter() - started) * 1000


def log_in_staff() -> str:
    """A superuser's session cookie value."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    staff = get_user_model().objects.create_superuser("bench-staff", "b@example.com", None)
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(staff)
    return client.cookies["sessionid"].value


def run(people: int, requests: int, env: dict[str, str], workdir: Path, engine: str) -> None:
    from django.db import close_old_connections, connection

    started = time.perf_counter()
    seed(people)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    else:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    print(f"seeded {people:,} people in {time.perf_counter() - started:.1f} s ({engine})")
    cookie = log_in_staff()
    ours_queries = count_queries(cookie)
    stock_queries = count_queries(cookie, stock=True)
    close_old_connections()

    gunicorn = ["project.wsgi", "--workers", "1"]
    stock_env = {**env, "DJANGO_SETTINGS_MODULE": STOCK_SETTINGS}
    with (
        start_gunicorn(env, gunicorn, workdir / "ours.log") as ours_site,
        start_gunicorn(stock_env, gunicorn, workdir / "stock.log") as stock_site,
    ):
        for _ in range(5):  # warm up: imports, template compilation, connections
            render_ms(ours_site, cookie)
            render_ms(stock_site, cookie)
        ours, stock = [], []
        for _ in range(requests):
            ours.append(render_ms(ours_site, cookie))
            stock.append(render_ms(stock_site, cookie))

    def describe(name: str, timings: list[float], queries: int) -> float:
        median = statistics.median(timings)
        p95 = statistics.quantiles(timings, n=20)[-1]
        print(f"{name:<40} median {median:7.1f} ms   p95 {p95:7.1f} ms   {queries} queries")
        return median

    print(
        f"gunicorn -w 1 each, DEBUG=0, {engine}, {requests} requests each, alternating; "
        f"cpu reference {cpu_reference_ms():.1f} ms"
    )
    ours_median = describe("admin index with dashboard (no cache)", ours, ours_queries)
    stock_median = describe("admin index, Django stock", stock, stock_queries)
    print(
        f"ratio dashboard/stock: {ours_median / stock_median:.2f}x (target <= 2x); "
        f"{ours_queries} queries (target <= 10)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=60)
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory() as scratch,
        ScratchDatabase("dashbench") as database,
    ):
        env = site_environment(database.url, Path(scratch), LOG_FORMAT="text", LOG_LEVEL="WARNING")
        prepare_site(env)
        os.environ.update(env)
        import django

        django.setup()
        run(args.profiles, args.requests, env, Path(scratch), database.engine)


if __name__ == "__main__":
    main()
