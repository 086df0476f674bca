"""Many people for a benchmark, fast: users, X profiles and X tokens by the million.

Person n has user `user{n}`, profile `person_{n}` (X id 3,000,000,000 + n; every
50th lives at "=1+1", a formula to neutralise; every bio has a comma and quotes)
and, except every tenth (n % 10 == 9, no token), the token of the method they
last signed in with; n % 10 == 1 holds both kinds. So N people hold N tokens, and
every case of "current token" is there: the method's own, another one, none.

On PostgreSQL the database makes the rows itself (INSERT ... SELECT over
generate_series, a million people in a minute or two); elsewhere bulk_create
does, in batches. Either way the tables are analysed afterwards, as autovacuum
would do on a live site, so the planner and the admin's estimated counts know
their size. Call `seed_people` with Django set up and the schema migrated.
"""

from datetime import UTC, datetime, timedelta

START = datetime(2010, 1, 1, tzinfo=UTC)
BATCH = 5000

# Every token holds the same (encrypted) secrets: nothing reads them here.
SECRET_TEXT = "bench-secret-never-exported"

_USERS_SQL = """
INSERT INTO auth_user (password, last_login, is_superuser, username, first_name, last_name,
                       email, is_staff, is_active, date_joined)
SELECT '!', %(start)s + (n %% 4000) * interval '1 day', false, 'user' || n, '', '',
       'user' || n || '@example.org', false, true, %(start)s + n * interval '1 minute'
FROM generate_series(%(first)s, %(last)s) AS n
"""

_PROFILES_SQL = """
INSERT INTO accounts_profile (user_id, x_user_id, screen_name, name, profile_image_url,
                              location, url, description, followers_count, following_count,
                              tweet_count, listed_count, protected, verified, x_created_at,
                              last_synced_at, sign_in_method, created_at, updated_at)
SELECT id, (3000000000 + n)::text, 'person_' || n, 'Person ' || n, '',
       CASE WHEN n %% 50 = 0 THEN '=1+1' ELSE 'Somewhere' END,
       'https://example.org/' || n,
       'Bio of person ' || n || ', with a comma and "quotes"',
       n * 7 %% 100000, n * 3 %% 5000, 0, 0, n %% 13 = 0, n %% 17 = 0,
       %(start)s + n * interval '1 hour', %(start)s + interval '4000 days' + n * interval '1 s',
       (ARRAY['oauth1', 'oauth2', ''])[n %% 3 + 1], now(), now()
FROM (SELECT id, substr(username, 5)::bigint AS n FROM auth_user
      WHERE username LIKE 'user%%' AND id BETWEEN %(first_id)s AND %(last_id)s) AS users
"""

_TOKENS_SQL = """
INSERT INTO accounts_xtoken (profile_id, kind, access_token, token_secret, refresh_token,
                             earlier_access_tokens, token_hint, scopes, expires_at, status,
                             last_error, created_at, updated_at)
SELECT id, kind, %(secret)s, %(secret)s, %(secret)s, '', 'cret', '',
       CASE WHEN kind = 'oauth2' THEN %(start)s + interval '5000 days' END,
       CASE WHEN n %% 7 = 0 THEN 'expired' WHEN n %% 11 = 0 THEN 'revoked' ELSE 'active' END,
       '', now(), now()
FROM (SELECT id, x_user_id::bigint - 3000000000 AS n FROM accounts_profile
      WHERE id BETWEEN %(first_id)s AND %(last_id)s) AS profiles,
     LATERAL (SELECT CASE WHEN n %% 3 = 0 THEN 'oauth1' ELSE 'oauth2' END AS kind
              WHERE n %% 10 <> 9
              UNION ALL
              SELECT CASE WHEN n %% 3 = 0 THEN 'oauth2' ELSE 'oauth1' END
              WHERE n %% 10 = 1) AS kinds
"""


def token_kinds(n: int) -> list[str]:
    """The kinds of token person n holds, the current one first."""
    if n % 10 == 9:
        return []
    kinds = ["oauth1", "oauth2"] if n % 3 == 0 else ["oauth2", "oauth1"]
    return kinds if n % 10 == 1 else kinds[:1]


def token_status(n: int) -> str:
    return "expired" if n % 7 == 0 else "revoked" if n % 11 == 0 else "active"


def seed_people(count: int, progress=print) -> None:
    """Make people 0 .. count - 1 (see the module docstring) and analyse their tables."""
    from django.db import connection

    seed = _seed_sql if connection.vendor == "postgresql" else _seed_orm
    seed(count, progress)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def _encrypted_secret() -> str:
    from accounts.models import XToken

    return XToken._meta.get_field("access_token").get_prep_value(SECRET_TEXT)


def _seed_sql(count: int, progress) -> None:
    from django.db import connection, transaction

    secret = _encrypted_secret()
    step = 100_000
    for first in range(0, count, step):
        last = min(first + step, count) - 1
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_USERS_SQL, {"start": START, "first": first, "last": last})
            cursor.execute(
                "SELECT min(id), max(id) FROM auth_user WHERE username IN (%s, %s)",
                [f"user{first}", f"user{last}"],
            )
            first_user, last_user = cursor.fetchone()
            ids = {"first_id": first_user, "last_id": last_user}
            cursor.execute(_PROFILES_SQL, {"start": START, **ids})
            cursor.execute(
                "SELECT min(id), max(id) FROM accounts_profile WHERE user_id BETWEEN %s AND %s",
                [first_user, last_user],
            )
            first_profile, last_profile = cursor.fetchone()
            cursor.execute(
                _TOKENS_SQL,
                {
                    "start": START,
                    "secret": secret,
                    "first_id": first_profile,
                    "last_id": last_profile,
                },
            )
        progress(f"  {last + 1:,} people")


def _seed_orm(count: int, progress) -> None:
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from accounts.models import Profile, XToken

    User = get_user_model()
    for first in range(0, count, BATCH):
        numbers = range(first, min(first + BATCH, count))
        with transaction.atomic():
            users = User.objects.bulk_create(
                User(
                    password="!",
                    username=f"user{n}",
                    email=f"user{n}@example.org",
                    last_login=START + timedelta(days=n % 4000),
                    date_joined=START + timedelta(minutes=n),
                )
                for n in numbers
            )
            profiles = Profile.objects.bulk_create(
                Profile(
                    user=user,
                    x_user_id=str(3_000_000_000 + n),
                    screen_name=f"person_{n}",
                    name=f"Person {n}",
                    location="=1+1" if n % 50 == 0 else "Somewhere",
                    url=f"https://example.org/{n}",
                    description=f'Bio of person {n}, with a comma and "quotes"',
                    followers_count=n * 7 % 100_000,
                    following_count=n * 3 % 5000,
                    protected=n % 13 == 0,
                    verified=n % 17 == 0,
                    x_created_at=START + timedelta(hours=n),
                    last_synced_at=START + timedelta(days=4000, seconds=n),
                    sign_in_method=("oauth1", "oauth2", "")[n % 3],
                )
                for n, user in zip(numbers, users, strict=True)
            )
            tokens = [
                XToken(
                    profile=profile,
                    kind=kind,
                    token_hint="cret",
                    expires_at=START + timedelta(days=5000) if kind == "oauth2" else None,
                    status=token_status(n),
                )
                for n, profile in zip(numbers, profiles, strict=True)
                for kind in token_kinds(n)
            ]
            XToken.objects.bulk_create(tokens)
            # One UPDATE encrypts once; bulk_create would encrypt every secret of every row.
            XToken.objects.filter(pk__in=[token.pk for token in tokens]).update(
                access_token=SECRET_TEXT, token_secret=SECRET_TEXT, refresh_token=SECRET_TEXT
            )
        progress(f"  {numbers[-1] + 1:,} people")
