"""The CSV export made by PostgreSQL's COPY is byte for byte the Python writer's file.

On PostgreSQL `iter_export` asks the database for the CSV (`iter_csv_copy`); the
Python writer (`iter_csv` over `stream_rows`, itself compared with import-export's
stock export in test_export.py) stays the reference. Both run here over rows that
try every rule: text stored raw, as rows from before X's values were cleaned may
be (control and bidi characters, CR/LF and tabs, formula prefixes, quotes, commas,
line breaks, unicode, empty and NULL), booleans, NULL and fractional datetimes in
several time zones, and each case of the current token (the method signed in
with, another one, none, a status or kind outside the choices).
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from accounts.models import SECRET_COLUMNS, Profile, TokenKind, TokenStatus, XToken
from admin_ext.export import (
    CHUNK_SIZE,
    export_columns,
    filter_profiles,
    iter_csv,
    iter_csv_copy,
    iter_export,
    stream_rows,
)

pytestmark = pytest.mark.django_db

needs_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="COPY ... TO STDOUT is PostgreSQL's; on SQLite the export is the Python writer",
)

HOSTILE_TEXTS = [
    "=1+1",
    "+SUM(A1:A9)",
    "-2+3",
    "@HYPERLINK",
    "\tTabbed",
    "\rReturned",
    "\r\n=after a CRLF",
    "\x01=hidden behind a control",
    "\t=behind a tab",
    'with "quotes", and, commas',
    "two\nlines",
    "mac\rline\r\nand windows\r\n",
    "\x1b[31mred\x1b[0m and a bell\x07",
    "\x85next line\x9bCSI\x7fDEL",
    "a\u2028b\u2029c",
    "\u202egnp.exe and \u2066isolated\u2069",
    "nonchars \ufffe\uffff",
    "tabs\t\t\tand\t\x01\tcontrols",
    "emoji 😀 日本語 Ünïcödé",
    " leading and trailing spaces ",
    "\\.",
    '"',
    '""',
    ",",
    "\n",
    "-",
    "=",
    "NULL",
    "\\N",
    "   ",
    "",
]


def hostile_people() -> list[Profile]:
    """One profile per hostile text, in every text column, with every token case."""
    start = datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    profiles = []
    for n, text in enumerate(HOSTILE_TEXTS):
        user = get_user_model().objects.create_user(
            username=f"hostile{n}",
            email=f"hostile{n}@example.org",
            last_login=None if n % 4 == 0 else start + timedelta(days=n, microseconds=n),
        )
        Profile.objects.filter(user=user).update(
            x_user_id=None if n % 5 == 0 else f"{text}{n}"[:32],
            screen_name=text[:50],
            name=text,
            location=text[::-1],
            url=text,
            description=f"{text}\n{text}",
            followers_count=n * 1_000_003,
            following_count=0,
            protected=n % 2 == 0,
            verified=n % 3 == 0,
            x_created_at=None if n % 6 == 0 else start + timedelta(hours=n * 977 - 9_000_000),
            last_synced_at=start + timedelta(days=n * 400, seconds=0.5),
            sign_in_method=("", TokenKind.OAUTH1, TokenKind.OAUTH2)[n % 3],
        )
        profiles.append(Profile.objects.get(user=user))
    return profiles


def add_tokens(profiles: list[Profile]) -> None:
    """Every case of the current token (see accounts.models.current_token_column)."""
    kinds_by_case = [
        [],
        [TokenKind.OAUTH1],
        [TokenKind.OAUTH2],
        [TokenKind.OAUTH1, TokenKind.OAUTH2],
    ]
    statuses = [*TokenStatus.values, "=evil", "@x", "\x1b[2J", ""]
    later = datetime(2031, 5, 6, 7, 8, 9, 123_456, tzinfo=UTC)
    tokens = []
    for n, profile in enumerate(profiles):
        for kind in kinds_by_case[n % 4]:
            token = XToken(
                profile=profile,
                kind=kind,
                status=statuses[(n + len(tokens)) % len(statuses)],
                expires_at=None if kind == TokenKind.OAUTH1 else later + timedelta(hours=n),
            )
            token.set_secrets(f"access-{n}-{kind}", f"secret-{n}", f"refresh-{n}")
            tokens.append(token)
    # A kind outside the choices: its label is the stored value, neutralised.
    odd = XToken(profile=profiles[0], kind="+odd", status=TokenStatus.ACTIVE)
    tokens.append(odd)
    XToken.objects.bulk_create(tokens)


def plain_people(count: int) -> None:
    """Rows with nothing to clean, in bulk, so an export spans more than one chunk.

    Made after the hostile ones, they fill the first chunk and the next ones alone:
    formulas to neutralise, quotes, commas and unicode, but no control character;
    only the first hundred have a line break in their bio.
    """
    User = get_user_model()
    users = User.objects.bulk_create(User(username=f"plain{n}") for n in range(count))
    Profile.objects.bulk_create(
        Profile(
            user=user,
            x_user_id=str(5_000_000 + n),
            screen_name=f"plain_{n}",
            name=f"=Plain {n}" if n % 7 == 0 else f"Plain Person {n}",
            location="@home" if n % 5 == 0 else "Zürich \u2014 it\u2019s \u201chere\u201d",
            description=f'Bio {n}, with a comma and "quotes"' + ("\nand more" if n < 100 else ""),
            x_created_at=datetime(2015, 1, 1, tzinfo=UTC) + timedelta(minutes=n),
        )
        for n, user in enumerate(users)
    )


@pytest.fixture
def hostile():
    profiles = hostile_people()
    add_tokens(profiles)
    return profiles


def python_csv(queryset, columns) -> bytes:
    return "".join(iter_csv(stream_rows(queryset, columns), columns)).encode()


def copy_csv(queryset, columns) -> bytes:
    return "".join(iter_csv_copy(queryset, columns)).encode()


COLUMN_SETS = {
    "all": None,
    "text": ["x_user_id", "screen_name", "name", "location", "url", "description"],
    "token": ["token_kind", "token_status", "token_expiry"],
    "flags and numbers": ["protected", "verified", "followers", "following"],
    "dates": ["joined_x", "signed_up_here", "last_sign_in", "last_synced"],
    "two": ["screen_name", "token_status"],
}


@needs_postgresql
@pytest.mark.parametrize("time_zone", ["UTC", "Asia/Kolkata", "America/St_Johns"])
@pytest.mark.parametrize("column_set", sorted(COLUMN_SETS))
def test_copy_csv_is_the_python_csv_byte_for_byte(hostile, settings, time_zone, column_set):
    settings.TIME_ZONE = time_zone
    columns = export_columns(COLUMN_SETS[column_set])
    queryset = Profile.objects.all()
    expected = python_csv(queryset, columns)
    assert copy_csv(queryset, columns) == expected
    # The comparison covers what it claims to: hostile cells are in the file, cleaned.
    if column_set == "all":
        text = expected.decode()
        for cleaned in ["'=1+1", "'@HYPERLINK", "'=hidden behind a control", "'=evil", "'+odd"]:
            assert cleaned in text
        assert '"with ""quotes"", and, commas"' in text
        assert "\x1b" not in text and "\u202e" not in text and "\ufffe" not in text
        assert "secret-" not in text and "access-" not in text


@needs_postgresql
def test_copy_csv_in_spanish_is_the_python_csv_in_spanish(hostile):
    columns = export_columns(COLUMN_SETS["two"])
    queryset = Profile.objects.all()
    with translation.override("es"):
        expected = python_csv(queryset, columns)
        assert copy_csv(queryset, columns) == expected
        spanish = {str(label) for _, label in TokenStatus.choices}
    # Token status labels are in the staff member's language, in both writers.
    english = {str(label) for _, label in TokenStatus.choices}
    statuses = {line.split(",")[-1] for line in expected.decode().splitlines()[1:]}
    assert statuses & spanish
    assert not statuses & (english - spanish)


@needs_postgresql
@pytest.mark.parametrize(
    "filters",
    [
        {"search": "hostile1"},
        {"search": '"and windows"'},
        {"token_status": "expired"},
        {"token_status": "none"},
        {"joined_after": datetime(945, 1, 1).date()},
    ],
    ids=str,
)
def test_copy_csv_exports_the_same_filtered_rows(hostile, filters):
    columns = export_columns()
    queryset = filter_profiles(**filters)
    expected = python_csv(queryset, columns)
    assert len(expected.splitlines()) > 1
    assert copy_csv(queryset, columns) == expected


@needs_postgresql
def test_copy_csv_of_nothing_is_the_header(hostile):
    columns = export_columns()
    for empty in (Profile.objects.none(), Profile.objects.filter(pk__in=[])):
        assert copy_csv(empty, columns) == python_csv(empty, columns)
        assert copy_csv(empty, columns).count(b"\r\n") == 1


@needs_postgresql
def test_copy_csv_across_chunks_and_its_progress(hostile):
    plain_people(CHUNK_SIZE + 50)
    columns = export_columns()
    queryset = Profile.objects.all()
    seen = []
    pieces = list(iter_csv_copy(queryset, columns, seen.append))
    assert "".join(pieces).encode() == python_csv(queryset, columns)
    total = len(hostile) + CHUNK_SIZE + 50
    assert seen == [CHUNK_SIZE, total]
    assert len(pieces) == 3  # the header, a full chunk, the rest


@needs_postgresql
def test_a_download_stopped_halfway_leaves_the_connection_usable(hostile):
    """A person closing the tab closes the generator in the middle of the COPY.

    psycopg then cancels the statement, which aborts the transaction it ran in (here
    the test's own, as any caller's might be); the queries after must still work.
    Enough rows that PostgreSQL is still sending when the download stops.
    """
    plain_people(CHUNK_SIZE * 10)
    pieces = iter_export(Profile.objects.all(), export_columns(), "csv")
    next(pieces)
    next(pieces)
    pieces.close()
    assert Profile.objects.count() == len(hostile) + CHUNK_SIZE * 10


@pytest.mark.parametrize("column_set", sorted(COLUMN_SETS))
def test_every_csv_export_is_the_python_csv(hostile, column_set):
    """What the admin, the command and jobs get, on either database."""
    columns = export_columns(COLUMN_SETS[column_set])
    queryset = Profile.objects.all()
    exported = "".join(iter_export(queryset, columns, "csv")).encode()
    assert exported == python_csv(queryset, columns)


def test_a_single_column_export_writes_an_empty_cell_as_csv_does(hostile):
    columns = export_columns(["screen_name"])
    exported = "".join(iter_export(Profile.objects.all(), columns, "csv")).encode()
    assert exported == python_csv(Profile.objects.all(), columns)
    assert b'\r\n""\r\n' in exported


@needs_postgresql
def test_the_export_is_one_copy_statement_also_under_djangos_debug_cursor(hostile):
    """DEBUG (and capturing queries) wraps the cursor; the export must still work, as COPY."""
    columns = export_columns()
    with CaptureQueriesContext(connection) as queries:
        exported = "".join(iter_export(Profile.objects.all(), columns, "csv")).encode()
    assert exported == python_csv(Profile.objects.all(), columns)
    reads = [query["sql"] for query in queries.captured_queries if "SELECT" in query["sql"]]
    assert len(reads) == 1 and reads[0].startswith("COPY (")
    for secret_column in SECRET_COLUMNS:
        assert secret_column not in reads[0]
