"""The Profiles and X tokens lists cost the same queries at any table size.

A list page must not grow with the table: the same queries for 5 rows as for 50,
one count of the list at most (no second, unfiltered recount), and on PostgreSQL
no count at all for a big unfiltered list, whose size comes from the table
statistics (admin_ext.paginators).
"""

import re

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Profile, TokenKind, XToken
from admin_ext.admin import ProfileAdmin, XTokenAdmin
from admin_ext.paginators import EstimatedCountPaginator

pytestmark = pytest.mark.django_db

PROFILES = reverse("admin:accounts_profile_changelist")
TOKENS = reverse("admin:accounts_xtoken_changelist")
COUNT = re.compile(r"\bCOUNT\(\*\)")


def add_people(first: int, count: int) -> None:
    """`count` users with a profile and a token each, half with a second token."""
    User = get_user_model()
    numbers = range(first, first + count)
    users = User.objects.bulk_create(User(username=f"person{n}") for n in numbers)
    profiles = Profile.objects.bulk_create(
        Profile(
            user=user,
            x_user_id=str(4_000_000 + n),
            screen_name=f"person_{n}",
            sign_in_method=TokenKind.values[n % 2],
        )
        for n, user in zip(numbers, users, strict=True)
    )
    tokens = []
    for n, profile in zip(numbers, profiles, strict=True):
        for kind in TokenKind.values[: 1 + n % 2]:
            token = XToken(profile=profile, kind=kind)
            token.set_secrets(f"access-{n}-{kind}", "secret", "refresh")
            tokens.append(token)
    XToken.objects.bulk_create(tokens)


@pytest.fixture
def staff_client(client):
    boss = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-boss-123")
    client.force_login(boss)
    return client


def page_queries(client, url: str, **params) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, params)
    assert response.status_code == 200
    return [query["sql"] for query in queries.captured_queries]


def unbounded_reads(queries: list[str]) -> list[str]:
    """Queries that read rows of the lists' tables with no LIMIT: they grow with the table.

    Django reads a list that fits on one page ("show all") without a LIMIT, so this
    means something only for a list longer than its page.
    """
    tables = ('FROM "accounts_profile"', 'FROM "accounts_xtoken"')
    return [
        sql
        for sql in queries
        if sql.startswith("SELECT")
        and any(table in sql for table in tables)
        and not COUNT.search(sql)
        and not re.search(r"\bLIMIT \d+\s*$", sql)
    ]


def shown_rows(client, url: str) -> int:
    return client.get(url).content.decode().count('class="action-select"')


@pytest.mark.parametrize("url", [PROFILES, TOKENS], ids=["profiles", "tokens"])
def test_a_list_costs_the_same_queries_for_5_or_50_rows_and_counts_once(
    staff_client, monkeypatch, url
):
    add_people(0, 5)
    staff_client.get(url)  # the first view of a session may look up more
    small = page_queries(staff_client, url)
    assert shown_rows(staff_client, url) >= 5

    add_people(5, 45)
    big = page_queries(staff_client, url)
    assert shown_rows(staff_client, url) >= 50
    assert len(big) == len(small)
    # The list's own count only: Django's second, unfiltered count is switched off.
    assert len([sql for sql in big if COUNT.search(sql)]) == 1

    # More rows than a page holds: every read is one page, never the whole table (a
    # query that reads it all costs the same number of queries at any size).
    admin_class = ProfileAdmin if url == PROFILES else XTokenAdmin
    monkeypatch.setattr(admin_class, "list_per_page", 10)
    monkeypatch.setattr(admin_class, "list_max_show_all", 10)
    assert unbounded_reads(page_queries(staff_client, url)) == []


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="table statistics (pg_class.reltuples) are PostgreSQL's; SQLite counts",
)
@pytest.mark.parametrize(
    "url, noun", [(PROFILES, "profiles"), (TOKENS, "X tokens")], ids=["profiles", "tokens"]
)
def test_a_big_unfiltered_list_is_not_counted_on_postgresql(staff_client, monkeypatch, url, noun):
    add_people(0, 50)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE accounts_profile, accounts_xtoken")
    expected = Profile.objects.count() if noun == "profiles" else XToken.objects.count()
    # Big means over 100,000 rows; 50 analysed rows stand in for them here.
    monkeypatch.setattr(EstimatedCountPaginator, "estimate_above", 10)

    queries = page_queries(staff_client, url)
    assert not [sql for sql in queries if COUNT.search(sql)]
    assert f"{expected} {noun}" in staff_client.get(url).content.decode()

    # A filtered list is counted exactly, once.
    filtered = page_queries(staff_client, url, q="person_1")
    assert len([sql for sql in filtered if COUNT.search(sql)]) == 1
    html = staff_client.get(url, {"q": "person_1"}).content.decode()
    matching = 11 if noun == "profiles" else 17  # person_1, person_10-19; odd ones have 2
    assert f"{matching} result" in html
