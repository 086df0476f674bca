"""Does the dashboard keep the admin index fast at scale? Prints figures; asserts nothing.

    .venv/bin/python bench/dashboard.py [--profiles 100000] [--requests 40]

Seeds N people (user, X profile, OAuth 2.0 token of every status, a month of
sign-ins), 5 bulk jobs of 2,000 items and 2,000 audit events into a scratch
database -- a temporary SQLite file, or, when DATABASE_URL points at PostgreSQL,
a scratch database created beside it and dropped at the end -- then renders the
admin index for a superuser with production settings (DEBUG=0, hashed static
files), alternating between our index with the dashboard -- recounting every
figure, and as staff mostly get it, with figures under 30 s old -- and Django's
stock index (our template directory switched off), same data, same process.

Target: dashboard <= 2x the stock index in median time; <= 10 queries.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import ScratchDatabase, prepare_site, site_environment  # noqa: E402


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


def count_queries(client) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = client.get("/admin/")
    assert response.status_code == 200, response.status_code
    return len(queries.captured_queries)


def time_index(client, requests: int, *, recount: bool = False) -> list[float]:
    """Milliseconds per render; `recount` empties the figures cache before each one."""
    from django.core.cache import cache

    timings = []
    for _ in range(requests):
        if recount:
            cache.clear()
        started = time.perf_counter()
        client.get("/admin/")
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def run(people: int, requests: int) -> None:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import override_settings

    from admin_ext.dashboard import CACHE_SECONDS

    started = time.perf_counter()
    seed(people)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    print(
        f"seeded {people:,} people in {time.perf_counter() - started:.1f} s ({connection.vendor})"
    )

    staff = get_user_model().objects.create_superuser("bench-staff", "b@example.com", None)
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(staff)
    stock_templates = [{**settings.TEMPLATES[0], "DIRS": []}]
    for _ in range(3):
        client.get("/admin/")  # warm up: template compilation, connection
    cache.clear()
    cold_queries = count_queries(client)
    warm_queries = count_queries(client)
    with override_settings(TEMPLATES=stock_templates):
        stock_queries = count_queries(client)

    ours, recounted, stock = [], [], []
    for _ in range(2):  # alternate, so drift in the machine's load hits all alike
        recounted += time_index(client, requests // 2, recount=True)
        ours += time_index(client, requests // 2)
        with override_settings(TEMPLATES=stock_templates):
            stock += time_index(client, requests // 2)

    def describe(name: str, timings: list[float], queries: int) -> float:
        median = statistics.median(timings)
        p95 = statistics.quantiles(timings, n=20)[-1]
        print(f"{name:<36} median {median:7.1f} ms   p95 {p95:7.1f} ms   {queries} queries")
        return median

    recount_median = describe("admin index, dashboard (recount)", recounted, cold_queries)
    ours_median = describe(f"admin index, dashboard (<{CACHE_SECONDS}s old)", ours, warm_queries)
    stock_median = describe("admin index, stock", stock, stock_queries)
    print(
        f"ratio dashboard/stock: {ours_median / stock_median:.2f}x as staff see it "
        f"(target <= 2x); {recount_median / stock_median:.2f}x on a recount"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=40)
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
        run(args.profiles, args.requests)


if __name__ == "__main__":
    main()
